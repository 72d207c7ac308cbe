// Pure mappings of driver/docker: Docker's answers → the contract's data.

import assert from 'node:assert/strict';

import type Docker from 'dockerode';

import { MAX_CONSOLE_BYTES, PowerState } from '../../../driver/driver';
import { CommandLineSyntaxError, splitCommandLine } from '../../../driver/command-line';
import { consoleText, demultiplexLogs } from '../../../driver/docker/console-log';
import { instanceInfoOf, powerStateOf } from '../../../driver/docker/container-state';
import { diagnosticsOf, type StatsSample } from '../../../driver/docker/diagnostics';
import { dockerStatus, isUnavailable, toDriverError } from '../../../driver/docker/docker-errors';
import { hostResourcesOf, hypervisorVersionOf, parseCpuInfo, parseHumanSize } from '../../../driver/docker/host-resources';
import { OomTracker, resumePoint, transitionOf } from '../../../driver/docker/lifecycle-events';
import { DriverError, InstanceNotFound, RuntimeUnavailable } from '../../../driver/driver';

const state = (Status: string, extra: Partial<{ OOMKilled: boolean; Dead: boolean }> = {}) => ({ Status, OOMKilled: false, Dead: false, ...extra });

describe('command-line', () => {
  it('splits like POSIX sh words', () => {
    assert.deepEqual(splitCommandLine('nginx -g "daemon off;"'), ['nginx', '-g', 'daemon off;']);
    assert.deepEqual(splitCommandLine(`sh -c 'echo $HOME'`), ['sh', '-c', 'echo $HOME']);
    assert.deepEqual(splitCommandLine('a\\ b "c\\"d" \'e\\f\' ""'), ['a b', 'c"d', 'e\\f', '']);
    assert.deepEqual(splitCommandLine('  spaced   out  '), ['spaced', 'out']);
    assert.deepEqual(splitCommandLine('x"y"z'), ['xyz']);
  });

  it('refuses unterminated quotes and a trailing backslash', () => {
    assert.throws(() => splitCommandLine('echo "oops'), CommandLineSyntaxError);
    assert.throws(() => splitCommandLine("echo 'oops"), CommandLineSyntaxError);
    assert.throws(() => splitCommandLine('echo \\'), CommandLineSyntaxError);
  });
});

describe('docker container-state', () => {
  it('maps Docker states to Nova power states', () => {
    assert.equal(powerStateOf(state('running'), false), PowerState.RUNNING);
    assert.equal(powerStateOf(state('paused'), false), PowerState.PAUSED);
    assert.equal(powerStateOf(state('paused'), true), PowerState.SUSPENDED);
    assert.equal(powerStateOf(state('created'), false), PowerState.SHUTDOWN);
    assert.equal(powerStateOf(state('exited'), false), PowerState.SHUTDOWN);
    assert.equal(powerStateOf(state('exited'), true), PowerState.SHUTDOWN, 'a stale marker does not matter unless paused');
    assert.equal(powerStateOf(state('exited', { OOMKilled: true }), false), PowerState.CRASHED);
    assert.equal(powerStateOf(state('dead', { Dead: true }), false), PowerState.CRASHED);
  });

  it('builds InstanceInfo from an inspected container', () => {
    const inspected = {
      Id: 'abc', Name: '/nova-u1',
      Config: { Labels: { 'openstack.instance_uuid': 'u1', 'openstack.instance_name': 'instance-00000001' } },
      State: { ...state('exited'), StartedAt: '0001-01-01T00:00:00Z' },
    } as unknown as Docker.ContainerInspectInfo;
    assert.deepEqual(instanceInfoOf(inspected, false), {
      uuid: 'u1', name: 'instance-00000001', powerState: PowerState.SHUTDOWN, runtimeId: 'abc', runtimeState: 'exited', startedAt: null,
    });
  });
});

describe('docker console-log', () => {
  const frame = (type: number, text: string) => {
    const payload = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUInt32BE(payload.length, 4);
    return Buffer.concat([header, payload]);
  };

  it('demultiplexes stdout and stderr frames in order', () => {
    const raw = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')]);
    assert.equal(demultiplexLogs(raw).toString(), 'out 1\nerr 1\nout 2\n');
  });

  it('passes an unframed (TTY) log through', () => {
    assert.equal(demultiplexLogs(Buffer.from('plain text\n')).toString(), 'plain text\n');
  });

  it('keeps only the last MAX_CONSOLE_BYTES', () => {
    const big = frame(1, `${'a'.repeat(MAX_CONSOLE_BYTES)}tail\n`);
    const text = consoleText(big);
    assert.equal(text.length, MAX_CONSOLE_BYTES);
    assert.ok(text.endsWith('tail\n'));
  });
});

describe('docker diagnostics', () => {
  // A `docker stats --no-stream` sample from this engine (cgroup v1), trimmed.
  const sample: StatsSample = {
    memory_stats: { usage: 753664, limit: 25276059648, stats: { total_inactive_file: 131072, inactive_file: 131072 } },
    cpu_stats: { cpu_usage: { total_usage: 22130548 } },
    blkio_stats: {
      io_service_bytes_recursive: [{ op: 'Read', value: 4096 }, { op: 'Write', value: 8192 }, { op: 'Total', value: 12288 }],
      io_serviced_recursive: [{ op: 'Read', value: 1 }, { op: 'Write', value: 2 }, { op: 'Total', value: 3 }],
    },
  };
  const container = {
    State: { Running: true, StartedAt: '2026-01-01T00:00:00Z' },
    HostConfig: { Memory: 256 * 1024 * 1024, NanoCpus: 2e9, CpuShares: 2048 },
  } as unknown as Docker.ContainerInspectInfo;

  it('maps one stats sample to Nova’s Diagnostics fields', () => {
    const diagnostics = diagnosticsOf(container, sample, PowerState.RUNNING, new Date('2026-01-01T00:01:40Z'));
    assert.equal(diagnostics.state, PowerState.RUNNING);
    assert.equal(diagnostics.hypervisor, 'docker');
    assert.equal(diagnostics.uptimeSec, 100);
    assert.equal(diagnostics.numCpus, 2);
    assert.deepEqual(diagnostics.cpuDetails, [{ id: 0, time: 22130548, utilisation: null }]);
    assert.equal(diagnostics.memoryMaxMb, 256);
    assert.equal(diagnostics.memoryUsedMb, 1);
    assert.deepEqual(diagnostics.nicDetails, []);
    assert.deepEqual(diagnostics.diskDetails, [{ readBytes: 4096, readRequests: 1, writeBytes: 8192, writeRequests: 2, errorsCount: -1 }]);
  });

  it('reports the network interfaces of the container namespace', () => {
    const withNic: StatsSample = {
      ...sample,
      networks: { eth0: { rx_bytes: 1, rx_packets: 2, rx_errors: 3, rx_dropped: 4, tx_bytes: 5, tx_packets: 6, tx_errors: 7, tx_dropped: 8 } },
    };
    const [nic] = diagnosticsOf(container, withNic, PowerState.RUNNING, new Date()).nicDetails;
    assert.deepEqual(nic, { macAddress: null, rxOctets: 1, rxPackets: 2, rxErrors: 3, rxDrop: 4, txOctets: 5, txPackets: 6, txErrors: 7, txDrop: 8 });
  });
});

describe('docker host-resources', () => {
  it('turns the engine version into Nova’s integer', () => {
    assert.equal(hypervisorVersionOf('20.10.24+dfsg1'), 20010024);
    assert.equal(hypervisorVersionOf('24.0.7'), 24000007);
    assert.equal(hypervisorVersionOf('28.2.2-rc.1'), 28002002);
  });

  it('reads Docker’s human sizes', () => {
    assert.equal(parseHumanSize('107.4GB'), 107.4e9);
    assert.equal(parseHumanSize('1.5 TB'), 1.5e12);
    assert.equal(parseHumanSize(undefined), 0);
  });

  it('describes the CPU from /proc/cpuinfo', () => {
    const cpuinfo = [0, 1].map((n) => `processor\t: ${n}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nphysical id\t: 0\nsiblings\t: 2\ncpu cores\t: 2\nflags\t\t: sse2 fpu avx2\n`).join('\n');
    assert.deepEqual(parseCpuInfo(cpuinfo, 'x86_64', 2), {
      arch: 'x86_64', model: 'AMD EPYC', vendor: 'AMD', topology: { sockets: 1, cores: 2, threads: 1 }, features: ['avx2', 'fpu', 'sse2'],
    });
  });

  it('reports the host as Nova wants it', () => {
    const resources = hostResourcesOf(
      { NCPU: 2, MemTotal: 25276059648, DockerRootDir: '/var/lib/docker', Architecture: 'x86_64', ServerVersion: '20.10.24+dfsg1' },
      { totalGb: 100, freeGb: 40 },
      { arch: 'x86_64' },
    );
    assert.equal(resources.vcpus, 2);
    assert.equal(resources.memoryMb, 24105);
    assert.equal(resources.localGb, 100);
    assert.equal(resources.diskAvailableLeastGb, 40);
    assert.equal(resources.hypervisorType, 'docker');
    assert.equal(resources.hypervisorVersion, 20010024);
    assert.deepEqual(resources.supportedInstances, [['x86_64', 'docker', 'exe']]);
  });
});

describe('docker lifecycle-events', () => {
  it('maps Docker actions to lifecycle transitions', () => {
    const plain = { suspended: false, crashed: false };
    assert.equal(transitionOf('start', plain), 'started');
    assert.equal(transitionOf('die', plain), 'stopped');
    assert.equal(transitionOf('die', { suspended: false, crashed: true }), 'died');
    assert.equal(transitionOf('pause', plain), 'paused');
    assert.equal(transitionOf('pause', { suspended: true, crashed: false }), 'suspended');
    assert.equal(transitionOf('unpause', plain), 'resumed');
    assert.equal(transitionOf('exec_create', plain), null);
  });

  it('recognises an OOM kill whether Docker reports oom before or after die', () => {
    const before = new OomTracker();
    assert.equal(before.observe('oom', 'c1', undefined), false);
    assert.equal(before.observe('die', 'c1', '137'), true);
    const after = new OomTracker();
    assert.equal(after.observe('die', 'c1', '137'), false);
    assert.equal(after.observe('oom', 'c1', undefined), true);
  });

  it('does not call an exit a crash when the OOM killer spared PID 1 or the container restarted since', () => {
    const spared = new OomTracker();
    spared.observe('oom', 'c1', undefined);
    assert.equal(spared.observe('die', 'c1', '0'), false);
    assert.equal(spared.observe('die', 'c1', '137'), false, 'the earlier OOM was used up by the exit after it');
    const restarted = new OomTracker();
    restarted.observe('oom', 'c1', undefined);
    restarted.observe('start', 'c1', undefined);
    assert.equal(restarted.observe('die', 'c1', '137'), false);
    const killed = new OomTracker();
    killed.observe('die', 'c1', '137');
    killed.observe('destroy', 'c1', undefined);
    assert.equal(killed.observe('oom', 'c1', undefined), false);
  });

  it('resumes a broken stream one nanosecond after the last event, exactly', () => {
    assert.equal(resumePoint('1764466563123456789'), '1764466563.123456790');
    assert.equal(resumePoint('1764466563999999999'), '1764466564.000000000');
  });
});

describe('docker errors', () => {
  const http = (statusCode: number, message = 'boom') => Object.assign(new Error(`(HTTP code ${statusCode})`), { statusCode, json: { message } });

  it('maps 404 on an instance to InstanceNotFound, 5xx and socket errors to RuntimeUnavailable', () => {
    assert.ok(toDriverError(http(404), 'inspect', 'u1') instanceof InstanceNotFound);
    assert.ok(toDriverError(http(500, 'containerd is down'), 'start', 'u1') instanceof RuntimeUnavailable);
    assert.match(toDriverError(http(500, 'containerd is down'), 'start').message, /containerd is down/);
    const refused = Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' });
    assert.ok(toDriverError(refused, 'info') instanceof RuntimeUnavailable);
    assert.ok(isUnavailable(Object.assign(new Error('x'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })));
  });

  it('maps other answers to DriverError and passes typed errors through', () => {
    const error = toDriverError(http(400, 'bad parameter'), 'create');
    assert.ok(error instanceof DriverError && !(error instanceof RuntimeUnavailable));
    assert.equal(dockerStatus(http(409)), 409);
    const typed = new InstanceNotFound('u');
    assert.equal(toDriverError(typed, 'x'), typed);
  });
});
