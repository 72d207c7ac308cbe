// An exception in the two notification streams: the legacy fields of nova.compute.utils.exception_to_dict (the
// exception's repr, its message, its code) and the versioned ExceptionPayload 1.1 (module and function where it was
// raised, class, str(), formatted traceback). The exception is a RemoteFailure: a Python one keeps its traceback
// lines, one raised in Berth has a JavaScript stack, rendered here in Python's traceback layout.
import type { RemoteFailure } from '../messaging/failure';
import { payloadObject, type PayloadPrimitive } from './payload-object';
import { builtinExceptionRepr, pyRepr, safeTruncate } from './python-format';

/** The fault message column (and so the notification) holds 255 bytes. */
const FAULT_MESSAGE_BYTES = 255;

interface Frame {
  readonly file: string;
  readonly line: string;
  readonly functionName: string;
}

/** exception_to_dict: `exception` (which oslo's JsonPayloadSerializer turns into its repr()), `message`, `code`. */
export function exceptionToDict(error: RemoteFailure): { exception: string; message: string; code: unknown } {
  // format_message() exists on NovaException only; anything else shows just its class name.
  const message = isNovaException(error) ? error.message : error.className;
  return {
    exception: exceptionRepr(error),
    message: safeTruncate(message, FAULT_MESSAGE_BYTES),
    code: 'code' in error.kwargs ? error.kwargs['code'] : 500,
  };
}

/** repr(): NovaException.__repr__ is str() of its __dict__ (kwargs, message) plus its class name. */
export function exceptionRepr(error: RemoteFailure): string {
  if (isNovaException(error)) return pyRepr({ kwargs: error.kwargs, message: error.message, class: error.className });
  return builtinExceptionRepr(error.className, error.args);
}

function isNovaException(error: RemoteFailure): boolean {
  return error.module === 'nova.exception';
}

/** ExceptionPayload.from_exception. */
export function exceptionPayload(error: RemoteFailure): PayloadPrimitive {
  const python = pythonFrames(error.tb);
  const frames = python.length > 0 ? python : javascriptFrames(error);
  const innermost = frames[frames.length - 1];
  return payloadObject('ExceptionPayload', '1.1', {
    module_name: innermost ? moduleName(innermost.file) : 'unknown',
    function_name: innermost?.functionName ?? 'unknown',
    exception: error.className,
    exception_message: error.message,
    traceback: error.tb.length > 0 ? error.tb.join(',') : formatTraceback(error, frames),
  });
}

/** `File "…", line N, in f` entries of a Python traceback, outermost first. */
function pythonFrames(tb: readonly string[]): Frame[] {
  const frames: Frame[] = [];
  for (const match of tb.join('').matchAll(/File "([^"]+)", line (\d+), in ([^\n]+)/g)) {
    frames.push({ file: match[1] ?? '', line: match[2] ?? '', functionName: (match[3] ?? '').trim() });
  }
  return frames;
}

/** V8 stack frames of where the error began (its cause, if any), outermost first; error constructors skipped. */
function javascriptFrames(error: RemoteFailure): Frame[] {
  const origin = error.cause instanceof Error ? error.cause : error;
  const frames: Frame[] = [];
  for (const line of (origin.stack ?? '').split('\n')) {
    const match = /^\s*at (?:(.+?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (!match) continue;
    const functionName = (match[1] ?? '<module>').replace(/^async /, '');
    if (frames.length === 0 && functionName.startsWith('new ')) continue;
    frames.push({ file: match[2] ?? '', line: match[3] ?? '', functionName });
  }
  return frames.reverse();
}

/** traceback.format_exception's list joined with ',' as Nova does. */
function formatTraceback(error: RemoteFailure, frames: readonly Frame[]): string {
  const qualified = ['builtins', '__main__'].includes(error.module) ? error.className : `${error.module}.${error.className}`;
  const last = error.message === '' ? `${qualified}\n` : `${qualified}: ${error.message}\n`;
  if (frames.length === 0) return last;
  const entries = frames.map((f) => `  File "${f.file}", line ${f.line}, in ${f.functionName}\n`);
  return ['Traceback (most recent call last):\n', ...entries, last].join(',');
}

/** A dotted module name from a source path: Python's package path, or ours from src/, driver/ or test/. */
function moduleName(file: string): string {
  const path = file.replace(/^file:\/\//, '');
  if (path.startsWith('node:')) return path;
  const python = /(?:dist|site)-packages\/(.+)\.py$/.exec(path);
  if (python?.[1]) return python[1].replace(/\/__init__$/, '').replace(/\//g, '.');
  const stem = path.replace(/\.[cm]?[jt]s$|\.py$/, '');
  const ours = /(?:^|\/)((?:src|driver|test)\/.+)$/.exec(stem);
  return (ours?.[1] ?? stem.split('/').pop() ?? 'unknown').replace(/\//g, '.');
}
