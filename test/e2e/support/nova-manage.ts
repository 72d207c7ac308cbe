// nova-manage, as the nova user with the control plane's nova.conf (cell mapping of new compute hosts).
import { AIO } from './control-plane';
import { type CliOptions, runWithOpenrc } from './openstack-cli';

/** `nova-manage --config-file /etc/berth-aio/nova.conf ARGS` as the nova user; resolves with stdout. */
export function novaManage(args: readonly string[], options: CliOptions = {}): Promise<string> {
  return runWithOpenrc('/usr/sbin/runuser', ['-u', 'nova', '--', '/usr/bin/nova-manage', '--config-file', AIO.novaConf, ...args], options);
}

/** discover_hosts runs of this process, one after the other (see discoverHosts). */
let discovering: Promise<unknown> = Promise.resolve();

/**
 * Maps new compute hosts to cell1; without it the scheduler never picks them. Resolves with the --verbose report.
 * Two discover_hosts at once may both try to map the same new host: the loser exits 2 (HostMappingExists, "should
 * not be run in parallel"). So this process runs them one at a time, and a run that lost to another process's
 * anyway is repeated once: by then the host is mapped and the repeat finds nothing to do.
 */
export function discoverHosts(options?: CliOptions): Promise<string> {
  const run = async (): Promise<string> => {
    const args = ['cell_v2', 'discover_hosts', '--verbose'];
    try {
      return await novaManage(args, options);
    } catch (error) {
      if (!/exit code 2\b/.test(String((error as Error).message))) throw error;
      return novaManage(args, options);
    }
  };
  const next = discovering.then(run, run);
  discovering = next.catch(() => undefined);
  return next;
}

export interface HostMapping {
  readonly cell: string;
  readonly cellUuid: string;
  readonly host: string;
}

/** The hosts mapped to a cell (`nova-manage cell_v2 list_hosts`, a table on stdout). */
export async function hostMappings(options?: CliOptions): Promise<HostMapping[]> {
  const table = await novaManage(['cell_v2', 'list_hosts'], options);
  return parseTableRows(table)
    .filter((cells) => cells[0] !== 'Cell Name')
    .map(([cell = '', cellUuid = '', host = '']) => ({ cell, cellUuid, host }));
}

/** The cells of each `| a | b |` row of a PrettyTable. */
export function parseTableRows(table: string): string[][] {
  return table
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
}
