// Issue 3, "Done means", step by step through the real `openstack` CLI with Docker inspected at each step: boot,
// containment seen from inside the container, console log, stop/start, soft and hard reboot, pause/unpause,
// suspend/resume, the instance actions and their events, and a delete that leaves no container and no allocation.
import assert from 'node:assert/strict';

import type Docker from 'dockerode';

import { LABEL } from '../../driver/docker/container-config';
import { CONSOLE_LINES, buildBusyboxImage } from '../support/images';
import {
  BerthHost,
  type Image,
  type Flavor,
  type Server,
  consumerAllocations,
  instanceActionsWithEvents,
  openstack,
  printMeasure,
  requireControlPlane,
  requireDocker,
  showServer,
  waitForServerStatus,
} from './support';

const MIB = 1024 * 1024;
const PIDS_LIMIT = 256;
const CAP_NET_RAW = 13;
const CAP_SYS_ADMIN = 21;
/** nova.compute.power_state, as `server show -f json` prints it. */
const POWER = { running: 1, paused: 3, shutdown: 4, suspended: 7 } as const;

/** The field `name` of /proc/<pid>/status. */
function statusField(status: string, name: string): string {
  const line = status.split('\n').find((l) => l.startsWith(`${name}:`));
  assert.ok(line, `/proc status has ${name}`);
  return line.slice(name.length + 1).trim();
}

function hasCapability(capEffHex: string, bit: number): boolean {
  return (BigInt(`0x${capEffHex}`) >> BigInt(bit)) & 1n ? true : false;
}

describe('instance lifecycle on the Docker driver (e2e, issue 3)', function () {
  this.timeout(180_000);
  let host: BerthHost;
  let flavor: Flavor;
  let image: Image;
  let id = '';
  let startedAt = '';

  before(async function () {
    await requireControlPlane(this);
    await requireDocker(this);
    host = new BerthHost({ suite: 'lifecycle', config: { docker: { pids_limit: PIDS_LIMIT } } });
    const tar = await buildBusyboxImage('berth-e2e-lifecycle:latest');
    [, image, flavor] = await Promise.all([host.start(), host.uploadImage({ file: tar.tarPath }), host.createFlavor({ vcpus: 1, ramMb: 128, diskGb: 1 })]);
  });

  after(async function () {
    await host?.cleanup();
  });

  const container = (): Promise<Docker.ContainerInspectInfo> => host.docker.requireInstanceContainer(id);

  /** `openstack server ARGS <id>`, then the server once it is `status`, and its container. */
  async function act(args: readonly string[], status: string): Promise<{ server: Server; c: Docker.ContainerInspectInfo }> {
    await openstack(['server', ...args, id]);
    const server = await waitForServerStatus(id, status, { intervalMs: 500 });
    assert.equal(server.fault, undefined, `no fault after ${args.join(' ')}`);
    return { server, c: await container() };
  }

  it('boots to ACTIVE with a running container carrying the flavor limits and the containment', async function () {
    const { server, ms } = await host.bootServer({ flavor: flavor.id, image: image.id });
    id = server.id;
    printMeasure('boot to ACTIVE (CLI to ACTIVE, polled every 0.5 s)', ms / 1000, 's');
    const built = host.berth.logs.find((l) => l['instance_uuid'] === id && typeof l.msg === 'string' && l.msg.startsWith('Took ') && l.msg.endsWith('to build instance.'));
    if (built) printMeasure("Berth's own share (its 'Took … to build instance.')", Number(built['seconds']), 's');

    assert.equal(server['OS-EXT-SRV-ATTR:host'], host.host);
    assert.equal(server['OS-EXT-STS:power_state'], POWER.running);
    const c = await container();
    assert.equal(c.State.Status, 'running');
    assert.equal(c.Config.Labels?.[LABEL.instanceUuid], id);
    assert.equal(c.Config.Labels?.[LABEL.instanceName], server['OS-EXT-SRV-ATTR:instance_name']);
    assert.equal(c.Config.Labels?.[LABEL.imageId], image.id);
    assert.equal(c.HostConfig.Memory, 128 * MIB, 'memory limit = flavor RAM');
    assert.equal(c.HostConfig.MemorySwap, 128 * MIB, 'no swap');
    assert.equal(c.HostConfig.NanoCpus, 1e9, 'a CPU cap of one vcpu');
    assert.equal(c.HostConfig.PidsLimit, PIDS_LIMIT);
    assert.equal(c.HostConfig.Privileged, false);
    assert.equal(c.HostConfig.NetworkMode, 'none');
    assert.deepEqual(c.HostConfig.CapDrop, ['ALL']);
    assert.ok(c.HostConfig.SecurityOpt?.includes('no-new-privileges'));
    assert.deepEqual(c.HostConfig.Binds ?? [], []);
    assert.deepEqual(c.Mounts, []);
  });

  it('confines the container: no CAP_SYS_ADMIN or CAP_NET_RAW, NoNewPrivs, only a loopback interface', async function () {
    for (const pid of ['1', 'self']) {
      const status = await host.docker.execInInstance(id, ['cat', `/proc/${pid}/status`]);
      const capEff = statusField(status, 'CapEff');
      assert.equal(hasCapability(capEff, CAP_SYS_ADMIN), false, `CapEff ${capEff} of ${pid} lacks CAP_SYS_ADMIN`);
      assert.equal(hasCapability(capEff, CAP_NET_RAW), false, `CapEff ${capEff} of ${pid} lacks CAP_NET_RAW`);
      assert.equal(statusField(status, 'NoNewPrivs'), '1', `NoNewPrivs of ${pid}`);
    }
    const interfaces = (await host.docker.execInInstance(id, ['ls', '/sys/class/net'])).split(/\s+/).filter(Boolean);
    assert.deepEqual(interfaces, ['lo']);
  });

  it("shows the container's output as the console log, and --lines N tails it", async function () {
    const log = await openstack(['console', 'log', 'show', id]);
    assert.deepEqual(log.split('\n').filter(Boolean), CONSOLE_LINES);
    // Nova's _tail_log keeps the last N pieces of log.split('\n'): the empty piece after the final newline is one.
    const tail = await openstack(['console', 'log', 'show', '--lines', '3', id]);
    assert.deepEqual(tail.split('\n').filter(Boolean), CONSOLE_LINES.slice(-2));
    assert.deepEqual((await openstack(['console', 'log', 'show', '--lines', '1', id])).trim(), '');
  });

  it('stops: SHUTOFF and the container stopped', async function () {
    const { server, c } = await act(['stop'], 'SHUTOFF');
    assert.equal(c.State.Running, false);
    assert.equal(c.State.Status, 'exited');
    assert.equal(server['OS-EXT-STS:power_state'], POWER.shutdown);
  });

  it('starts: ACTIVE and the container running', async function () {
    const { server, c } = await act(['start'], 'ACTIVE');
    assert.equal(c.State.Status, 'running');
    assert.equal(server['OS-EXT-STS:power_state'], POWER.running);
    startedAt = c.State.StartedAt;
  });

  it('reboots soft: ACTIVE and the container restarted', async function () {
    const { c } = await act(['reboot'], 'ACTIVE');
    assert.equal(c.State.Status, 'running');
    assert.notEqual(c.State.StartedAt, startedAt, 'the container was started again');
    startedAt = c.State.StartedAt;
  });

  it('reboots hard: ACTIVE and the container restarted', async function () {
    const { c } = await act(['reboot', '--hard'], 'ACTIVE');
    assert.equal(c.State.Status, 'running');
    assert.notEqual(c.State.StartedAt, startedAt, 'the container was started again');
  });

  it('pauses: PAUSED and the container paused', async function () {
    const { server, c } = await act(['pause'], 'PAUSED');
    assert.equal(c.State.Status, 'paused');
    assert.equal(c.State.Paused, true);
    assert.equal(server['OS-EXT-STS:power_state'], POWER.paused);
  });

  it('unpauses: ACTIVE and the container running', async function () {
    const { c } = await act(['unpause'], 'ACTIVE');
    assert.equal(c.State.Status, 'running');
  });

  it('suspends: SUSPENDED and the container frozen', async function () {
    const { server, c } = await act(['suspend'], 'SUSPENDED');
    assert.equal(c.State.Paused, true);
    assert.equal(server['OS-EXT-STS:power_state'], POWER.suspended);
  });

  it('resumes: ACTIVE and the container running', async function () {
    const { server, c } = await act(['resume'], 'ACTIVE');
    assert.equal(c.State.Status, 'running');
    assert.equal(server['OS-EXT-STS:power_state'], POWER.running);
  });

  it('lists every action in `server event list`, each with its compute event Success, and no fault', async function () {
    const actions = await instanceActionsWithEvents(id);
    assert.deepEqual(
      actions.map((a) => a.action),
      ['create', 'stop', 'start', 'reboot', 'reboot', 'pause', 'unpause', 'suspend', 'resume'],
    );
    const computeEvents: Record<string, string> = {
      create: 'compute__do_build_and_run_instance',
      stop: 'compute_stop_instance',
      start: 'compute_start_instance',
      reboot: 'compute_reboot_instance',
      pause: 'compute_pause_instance',
      unpause: 'compute_unpause_instance',
      suspend: 'compute_suspend_instance',
      resume: 'compute_resume_instance',
    };
    for (const action of actions) {
      const event = action.events.find((e) => e.event === computeEvents[action.action]);
      assert.ok(event, `${action.action} has ${computeEvents[action.action]}: ${JSON.stringify(action.events)}`);
      assert.equal(event.result, 'Success', `${action.action}: ${event.event}`);
      assert.ok(event.finish_time, `${action.action}: ${event.event} finished`);
    }
    const server = await showServer(id);
    assert.equal(server.fault, undefined);
    assert.equal(server['OS-EXT-STS:task_state'], null);
  });

  it('deletes: no container and no Placement allocation left', async function () {
    assert.notDeepEqual(await consumerAllocations(id), [], 'the instance holds an allocation before the delete');
    const ms = await host.deleteServer(id);
    printMeasure('delete (CLI to gone, polled every 0.5 s)', ms / 1000, 's');
    assert.equal(await host.docker.instanceContainer(id), null);
    assert.deepEqual(await consumerAllocations(id), []);
    const complaints = host.berth.logs.filter((l) => l['instance_uuid'] === id && (l.level === 'warn' || l.level === 'error'));
    assert.deepEqual(complaints, [], 'Berth logged no warning or error about the instance in its whole life');
  });
});
