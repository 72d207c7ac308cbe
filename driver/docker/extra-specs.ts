// Flavor extra specs in the `docker:` namespace. A flavor may tighten the containment freely, and relax it only as
// far as the operator's options allow; anything else is FlavorNotAllowed before a container exists. Keys of other
// namespaces (hw:, resources:, trait:, …) belong to the scheduler and are not ours to judge.

import { FlavorNotAllowed, type FlavorSpec } from '../driver';
import type { CompiledDockerOptions } from './docker-options';

const NAMESPACE = 'docker:';
const CAP_ADD = 'docker:cap_add';
const PIDS_LIMIT = 'docker:pids_limit';
const READ_ONLY_ROOT = 'docker:read_only_root';
const KNOWN = [CAP_ADD, PIDS_LIMIT, READ_ONLY_ROOT];

/** The containment one container gets: the operator's defaults adjusted by its flavor. */
export interface ContainerPolicy {
  readonly capAdd: readonly string[];
  readonly pidsLimit: number;
  readonly readOnlyRootFilesystem: boolean;
}

export function containerPolicy(flavor: FlavorSpec, options: CompiledDockerOptions): ContainerPolicy {
  const refuse = (reason: string): never => {
    throw new FlavorNotAllowed(`Flavor ${flavor.name}: ${reason}`);
  };
  for (const key of Object.keys(flavor.extraSpecs)) {
    if (key.startsWith(NAMESPACE) && !KNOWN.includes(key)) refuse(`unknown extra spec ${key} (known: ${KNOWN.join(', ')})`);
  }
  const specs = flavor.extraSpecs;

  const capAdd = [...options.capabilities];
  for (const requested of (specs[CAP_ADD] ?? '').split(/[\s,]+/).filter(Boolean)) {
    const cap = requested.toUpperCase().replace(/^CAP_/, '');
    if (capAdd.includes(cap)) continue;
    if (!options.allowedExtraCapabilities.includes(cap)) {
      const allowed = options.allowedExtraCapabilities.join(', ') || 'none';
      refuse(`${CAP_ADD}=${requested} is not allowed on this host (allowed extra capabilities: ${allowed})`);
    }
    capAdd.push(cap);
  }

  let pidsLimit = options.pidsLimit;
  const pids = specs[PIDS_LIMIT];
  if (pids !== undefined) {
    if (!/^\d+$/.test(pids.trim()) || Number(pids) < 1) refuse(`${PIDS_LIMIT}=${pids} is not a positive integer`);
    pidsLimit = Number(pids);
    if (pidsLimit > options.pidsLimit && !options.allowedFlavorExtraSpecs.includes(PIDS_LIMIT)) {
      refuse(`${PIDS_LIMIT}=${pids} exceeds this host's limit of ${options.pidsLimit}`);
    }
  }

  let readOnlyRootFilesystem = options.readOnlyRootFilesystem;
  const readOnly = specs[READ_ONLY_ROOT];
  if (readOnly !== undefined) {
    const value = parseBoolean(readOnly);
    if (value === null) refuse(`${READ_ONLY_ROOT}=${readOnly} is not a boolean`);
    readOnlyRootFilesystem = value === true;
    if (!readOnlyRootFilesystem && options.readOnlyRootFilesystem && !options.allowedFlavorExtraSpecs.includes(READ_ONLY_ROOT)) {
      refuse(`${READ_ONLY_ROOT}=${readOnly}: this host requires read-only root filesystems`);
    }
  }
  return { capAdd, pidsLimit, readOnlyRootFilesystem };
}

/** oslo strutils.bool_from_string's spellings. */
function parseBoolean(value: string): boolean | null {
  const word = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'y', 'on', 't'].includes(word)) return true;
  if (['false', '0', 'no', 'n', 'off', 'f'].includes(word)) return false;
  return null;
}
