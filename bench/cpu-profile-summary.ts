// Where a Berth process spent its CPU: self time of a .cpuprofile (--cpu-prof or cpu-profile-hook.ts) by function and
// by module (a node_modules package, a Berth file, node's internals), so a profile can be read in a terminal.
//   node dist-bench/bench/cpu-profile-summary.js <file.cpuprofile> [top]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A package name for node_modules code, the repo-relative file for ours, `node:` internals, or the VM's own. */
function moduleOf(url: string): string {
  if (!url) return '(vm)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return pkg[1];
  if (url.startsWith('node:')) return 'node:internal';
  const ours = /\/dist-[^/]+\/(.*)$/.exec(url) ?? /\/(src\/.*|driver\/.*|bench\/.*)$/.exec(url);
  return ours?.[1] ?? url;
}

export function summarise(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const fn = `${frame.functionName || '(anonymous)'} ${moduleOf(frame.url)}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    const mod = frame.url ? moduleOf(frame.url) : frame.functionName || '(vm)';
    byModule.set(mod, (byModule.get(mod) ?? 0) + us);
  }
  const rows = (map: Map<string, number>): string[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, us]) => `  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
  const idle = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
  return [
    `${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s profiled, ${((total - idle) / 1e6).toFixed(1)} s on the CPU`,
    'self time by module:',
    ...rows(byModule),
    'self time by function:',
    ...rows(byFunction),
    '',
  ].join('\n');
}

if (require.main === module) {
  const [file, top = '25'] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node cpu-profile-summary.js <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(top)));
}
