// Wires Berth from its configuration: the only module that reads config files, the environment and signals.
import * as path from 'node:path';
import type { ComputeDriver } from '../driver/driver';
import { DockerDriver } from '../driver/docker/docker-driver';
import { FakeDriver } from '../driver/fake/fake-driver';
import { createLogger, type Logger } from './log';
import { configForLog, ConfigError, loadConfig, parseArgs, UsageError, USAGE, type BerthConfig } from './config';
import { MessagingSession, parseTransportUrl, RpcClient, RpcServer, type QueueFlags } from './messaging';
import { ConductorClient } from './conductor';
import { KeystoneSession } from './identity';
import { PlacementClient } from './placement';
import { GlanceClient } from './image';
import { ComputeManager } from './compute/manager';
import { computeEndpoints } from './compute/rpc-endpoint';
import { ComputeRpcApi } from './compute/compute-rpcapi';
import { ResourceTracker } from './compute/resource-tracker';
import { ServiceRecord, TOPIC } from './compute/service-record';
import { GlanceImages } from './compute/glance-images';
import { SchedulerReports } from './compute/scheduler-reports';
import { createInstanceNotifier } from './notifications';
import { ComputeService } from './service';
import { instanceName } from './compute/instance-spec';
import type { RequestContext } from './messaging';
import type { Instance, NovaObject } from './objects';

export const VERSION = '0.1.0';

/** Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

function queueFlags(config: BerthConfig): QueueFlags {
  const r = config.oslo_messaging_rabbit;
  return {
    durable: r.amqp_durable_queues,
    autoDelete: r.amqp_auto_delete,
    haQueues: r.rabbit_ha_queues,
    quorumQueues: r.rabbit_quorum_queue,
    transientQueuesTtlSec: r.rabbit_transient_queues_ttl,
  };
}

function messagingSession(config: BerthConfig, url: string, logger: Logger): MessagingSession {
  const r = config.oslo_messaging_rabbit;
  return new MessagingSession({
    url: parseTransportUrl(url),
    logger,
    heartbeatSec: r.heartbeat_timeout_threshold,
    loginMethod: r.rabbit_login_method,
    ssl: r.ssl
      ? {
          ...(r.ssl_ca_file ? { caFile: r.ssl_ca_file } : {}),
          ...(r.ssl_cert_file ? { certFile: r.ssl_cert_file } : {}),
          ...(r.ssl_key_file ? { keyFile: r.ssl_key_file } : {}),
        }
      : null,
    retryIntervalSec: r.rabbit_retry_interval,
    retryBackoffSec: r.rabbit_retry_backoff,
    intervalMaxSec: r.rabbit_interval_max,
    processName: 'berth-compute',
  });
}

function createDriver(config: BerthConfig, logger: Logger): ComputeDriver {
  const d = config.docker;
  if (d.driver === 'fake') return new FakeDriver({ logger });
  return new DockerDriver({
    hostUrl: d.host_url,
    ...(d.ca_file ? { caFile: d.ca_file } : {}),
    ...(d.cert_file ? { certFile: d.cert_file } : {}),
    ...(d.key_file ? { keyFile: d.key_file } : {}),
    stateDir: path.join(config.DEFAULT.state_path, 'docker'),
    computeHost: config.DEFAULT.host,
    capabilities: d.capabilities,
    allowedExtraCapabilities: d.allowed_extra_capabilities,
    pidsLimit: d.pids_limit,
    readOnlyRootFilesystem: d.read_only_root_filesystem,
    noNewPrivileges: d.no_new_privileges,
    allowedFlavorExtraSpecs: d.allowed_flavor_extra_specs,
    injectMetadataAsEnv: d.inject_metadata_as_env,
    logMaxSize: d.log_max_size,
    minApiVersion: d.min_api_version,
    apiTimeoutMs: d.api_timeout * 1000,
    snapshotTimeoutMs: d.snapshot_timeout * 1000,
    logger,
  });
}

/** Python's lazy-load: Instance.get_by_uuid(expected_attrs) and copy the fields in, not marking them changed. */
async function loadInstanceFields(conductor: ConductorClient, context: RequestContext, instance: Instance, fields: readonly string[]): Promise<void> {
  const fresh = await conductor.instanceGetByUuid(context, String(instance.get('uuid')), [...fields] as never);
  const target = instance as unknown as NovaObject;
  const source = fresh as unknown as NovaObject;
  const loaded = fields.filter((f) => !target.has(f) && source.has(f));
  for (const field of loaded) target.set(field, source.get(field));
  target.resetChanges(loaded);
}

/** Builds every part from the configuration; nothing is contacted until ComputeService.start(). */
export function buildService(config: BerthConfig, logger: Logger): ComputeService {
  const D = config.DEFAULT;
  const host = D.host;
  const nodename = D.hypervisor_hostname;
  const flags = queueFlags(config);

  const session = messagingSession(config, D.transport_url, logger);
  const rpcClient = new RpcClient({
    session,
    logger,
    exchange: D.control_exchange,
    queueFlags: flags,
    timeoutMs: D.rpc_response_timeout * 1000,
  });
  const conductor = new ConductorClient(rpcClient, { logger: logger.child({ component: 'conductor' }) });

  const placementSession = new KeystoneSession(config.placement, { logger: logger.child({ component: 'keystone', section: 'placement' }) });
  // [service_user] is optional when [glance] has its own credential; it then sends no service token.
  const serviceUserSession = config.service_user.auth_type
    ? new KeystoneSession(config.service_user, { logger: logger.child({ component: 'keystone', section: 'service_user' }) })
    : undefined;
  const glanceSession = config.glance.auth_type
    ? new KeystoneSession(config.glance, { logger: logger.child({ component: 'keystone', section: 'glance' }) })
    : serviceUserSession;
  const placement = new PlacementClient(placementSession, { logger: logger.child({ component: 'placement' }) });
  const glance = new GlanceClient(
    { ...config.glance, send_service_user_token: config.service_user.send_service_user_token },
    {
      ...(serviceUserSession ? { serviceUser: serviceUserSession } : {}),
      ...(glanceSession ? { fallbackAuth: glanceSession } : {}),
      logger: logger.child({ component: 'glance' }),
    },
  );

  const driver = createDriver(config, logger.child({ component: 'driver' }));

  const resourceTracker = new ResourceTracker(
    {
      host,
      nodename,
      statePath: D.state_path,
      myIp: D.my_ip,
      reservedHostMemoryMb: D.reserved_host_memory_mb,
      reservedHostCpus: D.reserved_host_cpus,
      reservedHostDiskMb: D.reserved_host_disk_mb,
      cpuAllocationRatio: D.cpu_allocation_ratio,
      ramAllocationRatio: D.ram_allocation_ratio,
      diskAllocationRatio: D.disk_allocation_ratio,
      initialCpuAllocationRatio: D.initial_cpu_allocation_ratio,
      initialRamAllocationRatio: D.initial_ram_allocation_ratio,
      initialDiskAllocationRatio: D.initial_disk_allocation_ratio,
    },
    conductor,
    driver,
    placement,
    logger,
  );

  // Notifications ride their own session when [oslo_messaging_notifications] transport_url names another broker.
  const notifyUrl = config.oslo_messaging_notifications.transport_url ?? D.transport_url;
  const notifySession = notifyUrl === D.transport_url ? session : messagingSession(config, notifyUrl, logger);
  const imageApiServer = config.glance.endpoint_override ?? config.glance.api_servers?.[0] ?? undefined;
  const notifier = createInstanceNotifier({
    host,
    notificationFormat: config.notifications.notification_format,
    transport: { session: notifySession, driver: config.oslo_messaging_notifications.driver, exchange: D.control_exchange, queueFlags: flags },
    legacyTopics: config.oslo_messaging_notifications.topics,
    versionedTopics: config.notifications.versioned_notifications_topics,
    imageApiServer: () => imageApiServer,
    instanceName: (instance) => instanceName(D.instance_name_template, instance),
    loadFields: (context, instance, fields) => loadInstanceFields(conductor, context, instance, fields),
    logger,
  });

  const images = new GlanceImages(glance, path.join(D.state_path, 'images'));
  const manager = new ComputeManager({
    options: {
      host,
      nodename,
      instanceNameTemplate: D.instance_name_template,
      maxConcurrentBuilds: D.max_concurrent_builds,
      shutdownTimeoutSec: D.shutdown_timeout,
      resumeGuestsStateOnHostBoot: D.resume_guests_state_on_host_boot,
      runningDeletedInstanceAction: D.running_deleted_instance_action,
      imageCache: {
        removeUnusedBaseImages: config.image_cache.remove_unused_base_images,
        removeUnusedOriginalMinimumAgeSec: config.image_cache.remove_unused_original_minimum_age_seconds,
        precacheConcurrency: config.image_cache.precache_concurrency,
      },
    },
    conductor,
    driver,
    placement,
    images,
    // Moving a container between hosts goes through a service-project image: only with a service credential.
    ...(glanceSession ? { migrationImages: images } : {}),
    scheduler: new SchedulerReports(rpcClient, host, config.filter_scheduler.track_instance_changes, logger.child({ component: 'scheduler-reports' })),
    resourceTracker,
    notifier,
    logger,
    computeRpc: new ComputeRpcApi(rpcClient),
  });

  const rpcServer = new RpcServer({
    session,
    topic: TOPIC,
    server: host,
    endpoints: computeEndpoints(manager),
    logger,
    exchange: D.control_exchange,
    queueFlags: flags,
    maxMessageBytes: config.oslo_messaging_rabbit.max_message_size_mb * 1024 * 1024,
    missingReplyQueueRetryTimeoutSec: config.oslo_messaging_rabbit.kombu_missing_consumer_retry_timeout,
  });

  const serviceRecord = new ServiceRecord(
    { host, reportIntervalSec: D.report_interval, enableNewServices: D.enable_new_services },
    conductor,
    logger,
  );

  return new ComputeService({
    session,
    rpcClient,
    rpcServer,
    conductor,
    driver,
    manager,
    resourceTracker,
    serviceRecord,
    intervals: {
      updateResourcesSec: D.update_resources_interval > 0 ? D.update_resources_interval : 60,
      syncPowerStatesSec: D.sync_power_state_interval,
      reapOrphansSec: D.running_deleted_instance_poll_interval,
      syncSchedulerSec: D.scheduler_instance_sync_interval,
      // Nova: 0 runs at the default periodic spacing (60 s), -1 never.
      imageCacheManagerSec: config.image_cache.manager_interval === 0 ? 60 : config.image_cache.manager_interval,
      fuzzyDelaySec: D.periodic_fuzzy_delay,
    },
    graceMs: D.graceful_shutdown_timeout * 1000,
    logger,
  });
}

/** The berth-compute command. Resolves with the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`berth-compute: ${err.message}\n${USAGE}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  if (args.version) {
    process.stdout.write(`berth-compute ${VERSION}\n`);
    return EXIT_OK;
  }
  if (args.configFiles.length === 0) {
    process.stderr.write(`berth-compute: --config-file is required\n${USAGE}\n`);
    return EXIT_CONFIG;
  }

  // Log at info while the config loads; its own [DEFAULT] debug/log_level applies from then on.
  const bootLogger = createLogger({ level: 'info' });
  let config: BerthConfig;
  try {
    config = loadConfig(args.configFiles, { logger: bootLogger });
  } catch (err) {
    if (err instanceof ConfigError) {
      bootLogger.fatal({ section: err.section, option: err.option }, `invalid configuration: ${err.message}`);
      process.stderr.write(`berth-compute: invalid configuration: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    throw err;
  }
  const logger = createLogger({ level: config.DEFAULT.log_level }).child({ host: config.DEFAULT.host });
  logger.info({ version: VERSION, config_files: args.configFiles, config: configForLog(config) }, 'berth-compute starting');

  let service: ComputeService;
  try {
    service = buildService(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'could not build the service from its configuration');
    process.stderr.write(`berth-compute: ${(err as Error).message}\n`);
    return EXIT_CONFIG;
  }

  // Bad input must never take the process down: a stray rejection is a bug to log, not a reason to exit.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, 'second signal: exiting without waiting for in-flight work');
        resolve(EXIT_FAILURE);
        return;
      }
      logger.info({ signal }, 'shutting down');
      service
        .stop()
        .then(() => resolve(EXIT_OK))
        .catch((err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(EXIT_FAILURE);
        });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('uncaughtException', (err) => {
      logger.fatal({ err }, 'uncaught exception; stopping');
      onSignal('SIGTERM');
    });
    service.start().catch((err: unknown) => {
      logger.fatal({ err }, 'start-up failed');
      void service.stop().finally(() => resolve(EXIT_FAILURE));
    });
  });
}
