import assert from 'node:assert/strict';
import { hostname, networkInterfaces } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError, configForLog, loadConfig, loadConfigFromSources, type BerthConfig } from '../../../src/config';
import { captureLogger, load, MINIMAL, removeTempFiles, tempFiles } from './helpers';

/** Asserts that loading MINIMAL + `text` fails with exactly `message`. */
function rejects(text: string, message: string): void {
  assert.throws(
    () => load(text),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
      assert.equal(error.name, 'ConfigError');
      assert.equal(error.message, message);
      return true;
    },
  );
}

describe('config/load-config', () => {
  after(removeTempFiles);

  describe('defaults', () => {
    const { config } = load();

    it("are nova.conf's, with Berth's own where the task says so", () => {
      const { host, hypervisor_hostname, my_ip, transport_url, ...rest } = config.DEFAULT;
      assert.deepEqual(rest, {
        state_path: '/var/lib/berth',
        control_exchange: 'nova',
        report_interval: 10,
        service_down_time: 60,
        rpc_response_timeout: 60,
        long_rpc_timeout: 1800,
        periodic_fuzzy_delay: 60,
        update_resources_interval: 0,
        sync_power_state_interval: 600,
        reserved_host_memory_mb: 512,
        reserved_host_cpus: 0,
        reserved_host_disk_mb: 0,
        cpu_allocation_ratio: null,
        ram_allocation_ratio: null,
        disk_allocation_ratio: null,
        initial_cpu_allocation_ratio: 16.0,
        initial_ram_allocation_ratio: 1.5,
        initial_disk_allocation_ratio: 1.0,
        max_concurrent_builds: 10,
        instance_name_template: 'instance-%08x',
        enable_new_services: true,
        shutdown_timeout: 60,
        resume_guests_state_on_host_boot: false,
        running_deleted_instance_action: 'reap',
        running_deleted_instance_poll_interval: 1800,
        instance_build_timeout: 0,
        scheduler_instance_sync_interval: 120,
        graceful_shutdown_timeout: 20,
        debug: false,
        log_level: 'info',
      });
      assert.equal(transport_url, 'rabbit://openstack:rabbit-pw@127.0.0.1:5672/');
      assert.equal(host, hostname());
      assert.equal(hypervisor_hostname, host);
      const external = Object.values(networkInterfaces())
        .flatMap((addresses) => addresses ?? [])
        .find((address) => address.family === 'IPv4' && !address.internal);
      assert.equal(my_ip, external?.address ?? '127.0.0.1');
    });

    it('cover the messaging, notification, scheduler and compute sections', () => {
      assert.deepEqual(config.oslo_messaging_rabbit, {
        amqp_durable_queues: false,
        amqp_auto_delete: false,
        rabbit_ha_queues: false,
        rabbit_quorum_queue: false,
        rabbit_transient_queues_ttl: 1800,
        heartbeat_timeout_threshold: 60,
        heartbeat_rate: 2,
        rabbit_retry_interval: 1,
        rabbit_retry_backoff: 2,
        rabbit_interval_max: 30,
        kombu_missing_consumer_retry_timeout: 60,
        rabbit_login_method: 'AMQPLAIN',
        rabbit_qos_prefetch_count: 0,
        ssl: false,
        ssl_ca_file: null,
        ssl_cert_file: null,
        ssl_key_file: null,
        max_message_size_mb: 16,
      });
      assert.deepEqual(config.oslo_messaging_notifications, {
        driver: [],
        topics: ['notifications'],
        transport_url: config.DEFAULT.transport_url,
      });
      assert.deepEqual(config.notifications, {
        notification_format: 'unversioned',
        versioned_notifications_topics: ['versioned_notifications'],
        notify_on_state_change: null,
        default_level: 'INFO',
      });
      assert.deepEqual(config.filter_scheduler, { track_instance_changes: true });
      assert.deepEqual(config.compute, {
        resource_provider_association_refresh: 300,
        consecutive_build_service_disable_threshold: 10,
      });
    });

    it('cover [image_cache] with Nova\'s names and defaults', () => {
      assert.deepEqual(config.image_cache, {
        manager_interval: 2400,
        remove_unused_base_images: true,
        remove_unused_original_minimum_age_seconds: 86400,
        precache_concurrency: 1,
      });
    });

    it('cover [docker]', () => {
      assert.deepEqual(config.docker, {
        host_url: 'unix:///var/run/docker.sock',
        ca_file: null,
        cert_file: null,
        key_file: null,
        min_api_version: '1.41',
        capabilities: [
          'CHOWN',
          'DAC_OVERRIDE',
          'FOWNER',
          'FSETID',
          'KILL',
          'SETGID',
          'SETUID',
          'SETPCAP',
          'NET_BIND_SERVICE',
          'SYS_CHROOT',
        ],
        allowed_extra_capabilities: [],
        pids_limit: 1024,
        read_only_root_filesystem: false,
        no_new_privileges: true,
        allowed_flavor_extra_specs: [],
        inject_metadata_as_env: false,
        log_max_size: '10m',
        api_timeout: 60,
        snapshot_timeout: 600,
        driver: 'docker',
      });
    });

    it('cover the keystoneauth sections', () => {
      assert.deepEqual(config.placement.valid_interfaces, ['internal', 'public']);
      assert.equal(config.placement.insecure, false);
      assert.equal(config.placement.timeout, null);
      assert.equal(config.placement.region_name, null);
      assert.equal(config.service_user.send_service_user_token, false);
      assert.deepEqual(config.glance.api_servers, null);
      assert.equal(config.glance.num_retries, 3);
      assert.equal(config.glance.verify_glance_signatures, false);
    });

    it('derive hypervisor_hostname from an explicit host', () => {
      assert.equal(load('[DEFAULT]\nhost = compute-7\n').config.DEFAULT.hypervisor_hostname, 'compute-7');
    });

    it('derive log_level from debug, unless log_level is set', () => {
      assert.equal(load('[DEFAULT]\ndebug = true\n').config.DEFAULT.log_level, 'debug');
      assert.equal(load('[DEFAULT]\ndebug = true\nlog_level = warn\n').config.DEFAULT.log_level, 'warn');
      assert.equal(load('[DEFAULT]\nlog_level = trace\n').config.DEFAULT.log_level, 'trace');
    });

    it('give the notifications their own transport_url only when set', () => {
      const url = 'rabbit://n:n@10.0.0.9:5672/notify';
      assert.equal(
        load(`[oslo_messaging_notifications]\ntransport_url = ${url}\n`).config.oslo_messaging_notifications
          .transport_url,
        url,
      );
    });

    it('treat an empty value of an option without a fixed default as unset', () => {
      const { config: c } = load(
        '[DEFAULT]\nhost = h1\nhypervisor_hostname =\ncpu_allocation_ratio =\n[placement]\ntimeout =\n',
      );
      assert.equal(c.DEFAULT.hypervisor_hostname, 'h1');
      assert.equal(c.DEFAULT.cpu_allocation_ratio, null);
      assert.equal(c.placement.timeout, null);
    });
  });

  describe('types', () => {
    it('integers: sign, bounds, no decimals or hex', () => {
      const { config } = load('[DEFAULT]\nsync_power_state_interval = -1\nreport_interval = +5\n');
      assert.equal(config.DEFAULT.sync_power_state_interval, -1);
      assert.equal(config.DEFAULT.report_interval, 5);
      const at = 'at test-1.conf:2 is not valid';
      for (const bad of ['ten', '0', '1.5', '0x10', '']) {
        rejects(
          `[DEFAULT]\nreport_interval = ${bad}\n`,
          `[DEFAULT] report_interval = "${bad}" ${at}: expected an integer >= 1`,
        );
      }
      rejects('[docker]\npids_limit = 0\n', `[docker] pids_limit = "0" ${at}: expected an integer >= 1`);
      rejects(
        '[DEFAULT]\nupdate_resources_interval = 99999999999999999999\n',
        `[DEFAULT] update_resources_interval = "99999999999999999999" ${at}: expected an integer`,
      );
    });

    it('floats: decimals and exponents, finite, bounded', () => {
      const { config } = load(
        '[DEFAULT]\ncpu_allocation_ratio = 2\nram_allocation_ratio = .5\ndisk_allocation_ratio = 1e1\n',
      );
      assert.equal(config.DEFAULT.cpu_allocation_ratio, 2);
      assert.equal(config.DEFAULT.ram_allocation_ratio, 0.5);
      assert.equal(config.DEFAULT.disk_allocation_ratio, 10);
      for (const bad of ['-1', 'nan', 'inf', 'abc', '1,5']) {
        rejects(
          `[DEFAULT]\ncpu_allocation_ratio = ${bad}\n`,
          `[DEFAULT] cpu_allocation_ratio = "${bad}" at test-1.conf:2 is not valid: expected a number >= 0`,
        );
      }
    });

    it("booleans: oslo's words, any case", () => {
      for (const word of ['true', 'TRUE', '1', 'on', 'Yes']) {
        assert.equal(load(`[DEFAULT]\ndebug = ${word}\n`).config.DEFAULT.debug, true, word);
      }
      for (const word of ['false', 'False', '0', 'off', 'NO']) {
        assert.equal(load(`[DEFAULT]\ndebug = ${word}\n`).config.DEFAULT.debug, false, word);
      }
      rejects(
        '[DEFAULT]\ndebug = maybe\n',
        '[DEFAULT] debug = "maybe" at test-1.conf:2 is not valid: ' +
          'expected a boolean (true/false, yes/no, on/off or 1/0)',
      );
    });

    it('choices: exact and case-sensitive, as oslo', () => {
      assert.equal(
        load('[DEFAULT]\nrunning_deleted_instance_action = log\n').config.DEFAULT.running_deleted_instance_action,
        'log',
      );
      rejects(
        '[DEFAULT]\nrunning_deleted_instance_action = Reap\n',
        '[DEFAULT] running_deleted_instance_action = "Reap" at test-1.conf:2 is not valid: ' +
          'expected one of reap, log, shutdown, noop',
      );
      rejects(
        '[notifications]\nnotification_format = json\n',
        '[notifications] notification_format = "json" at test-1.conf:2 is not valid: ' +
          'expected one of unversioned, versioned, both',
      );
    });

    it('lists: comma-separated, trimmed, trailing comma ignored, empty is empty', () => {
      const { config } = load('[oslo_messaging_notifications]\ntopics = a, b ,,\n[docker]\ncapabilities =\n');
      assert.deepEqual(config.oslo_messaging_notifications.topics, ['a', 'b']);
      assert.deepEqual(config.docker.capabilities, []);
    });

    it('capabilities: with or without CAP_, any case; only Linux names', () => {
      const { config } = load('[docker]\nallowed_extra_capabilities = cap_net_raw, SYS_ADMIN,CAP_MKNOD\n');
      assert.deepEqual(config.docker.allowed_extra_capabilities, ['NET_RAW', 'SYS_ADMIN', 'MKNOD']);
      for (const [value, item] of [
        ['CHOWN,NET_FOO', 2],
        ['ALL', 1],
      ] as const) {
        rejects(
          `[docker]\ncapabilities = ${value}\n`,
          `[docker] capabilities = "${value}" at test-1.conf:2 is not valid: expected a comma-separated list of ` +
            `Linux capability names; item ${item}: expected a Linux capability name such as CHOWN or CAP_NET_RAW`,
        );
      }
    });

    it('URLs: http(s) with a host', () => {
      assert.equal(
        load('[placement]\nendpoint_override = https://placement.example:8778/\n').config.placement.endpoint_override,
        'https://placement.example:8778/',
      );
      for (const bad of ['127.0.0.1:5000', 'ftp://keystone/', 'http://']) {
        rejects(
          `[placement]\nauth_url = ${bad}\n`,
          `[placement] auth_url = "${bad}" at test-1.conf:2 is not valid: ` +
            'expected a http:// or https:// URL with a host',
        );
      }
    });

    it('host: a host name, FQDN (with "_") or IP address', () => {
      for (const good of ['compute_1.example.org', '10.1.2.3', 'fd00::2', 'berth-aio']) {
        assert.equal(load(`[DEFAULT]\nhost = ${good}\n`).config.DEFAULT.host, good);
      }
      for (const bad of ['bad host', '-leading', 'a..b', '1.2.3.999']) {
        rejects(
          `[DEFAULT]\nhost = ${bad}\n`,
          `[DEFAULT] host = "${bad}" at test-1.conf:2 is not valid: expected a host name, FQDN or IP address`,
        );
      }
    });

    it('my_ip: an IP address', () => {
      assert.equal(load('[DEFAULT]\nmy_ip = 192.0.2.10\n').config.DEFAULT.my_ip, '192.0.2.10');
      rejects(
        '[DEFAULT]\nmy_ip = localhost\n',
        '[DEFAULT] my_ip = "localhost" at test-1.conf:2 is not valid: expected an IPv4 or IPv6 address',
      );
    });

    it('paths: made absolute; files that must be readable are checked now', () => {
      assert.equal(load('[DEFAULT]\nstate_path = ./.state/x\n').config.DEFAULT.state_path, resolve('.state/x'));
      const files = tempFiles({ 'ca.pem': 'x' });
      const missing = `${files['ca.pem']}.missing`;
      rejects(
        `[placement]\ncafile = ${missing}\n`,
        `[placement] cafile = "${missing}" at test-1.conf:2 is not valid: expected a readable file (ENOENT)`,
      );
      const dir = resolve(files['ca.pem'] as string, '..');
      rejects(
        `[placement]\ncafile = ${dir}\n`,
        `[placement] cafile = "${dir}" at test-1.conf:2 is not valid: expected a readable file (not a regular file)`,
      );
      assert.equal(load(`[placement]\ncafile = ${files['ca.pem']}\n`).config.placement.cafile, files['ca.pem']);
    });

    it('[docker] host_url: unix socket path, tcp:// or https://', () => {
      assert.equal(load('[docker]\nhost_url = tcp://127.0.0.1:2375\n').config.docker.host_url, 'tcp://127.0.0.1:2375');
      for (const bad of ['http://docker:2375', 'unix://relative.sock', '/var/run/docker.sock']) {
        rejects(
          `[docker]\nhost_url = ${bad}\n`,
          `[docker] host_url = "${bad}" at test-1.conf:2 is not valid: ` +
            'expected unix:///path/to/docker.sock, tcp://host:port or https://host:port',
        );
      }
    });

    it('[docker] sizes, API versions and extra spec keys', () => {
      const { config } = load(
        '[docker]\nlog_max_size = 20M\nmin_api_version = 1.43\nallowed_flavor_extra_specs = docker:pids_limit\n',
      );
      assert.equal(config.docker.log_max_size, '20m');
      assert.equal(config.docker.min_api_version, '1.43');
      assert.deepEqual(config.docker.allowed_flavor_extra_specs, ['docker:pids_limit']);
      rejects(
        '[docker]\nlog_max_size = 10mb\n',
        '[docker] log_max_size = "10mb" at test-1.conf:2 is not valid: ' +
          'expected a size such as 10m (a positive integer, optionally followed by k, m or g)',
      );
      rejects(
        '[docker]\nmin_api_version = v1.41\n',
        '[docker] min_api_version = "v1.41" at test-1.conf:2 is not valid: expected a Docker API version such as 1.41',
      );
      rejects(
        '[docker]\nallowed_flavor_extra_specs = docker:cap_add, hw:cpu_policy\n',
        '[docker] allowed_flavor_extra_specs = "docker:cap_add, hw:cpu_policy" at test-1.conf:2 is not valid: ' +
          'expected a comma-separated list of docker:* extra spec keys; item 2: expected a docker:* key',
      );
    });

    it('the multi-valued notification driver collects repeats, commas and files', () => {
      const { config } = load(
        '[oslo_messaging_notifications]\ndriver = messagingv2\n',
        '[oslo_messaging_notifications]\ndriver = log, noop\ndriver =\n',
      );
      assert.deepEqual(config.oslo_messaging_notifications.driver, ['messagingv2', 'log', 'noop']);
      rejects(
        '[oslo_messaging_notifications]\ndriver = messagingv2\ndriver = kafka\n',
        '[oslo_messaging_notifications] driver = "kafka" at test-1.conf:3 is not valid: ' +
          'expected a comma-separated list of notification drivers; ' +
          'item 1: expected one of messagingv2, messaging, noop, log',
      );
    });
  });

  describe('secrets', () => {
    it('a bad secret value is named but never shown', () => {
      const expected =
        'expected a transport URL rabbit://user:password@host:port[,user:password@host:port...]/virtual_host';
      rejects(
        '[DEFAULT]\ntransport_url = kafka://openstack:hunter2@kafka.example:9092/\n',
        `[DEFAULT] transport_url (a secret: value not shown) at test-1.conf:2 is not valid: ${expected} ` +
          "(unsupported transport 'kafka' (expected rabbit://))",
      );
      rejects(
        '[oslo_messaging_notifications]\ntransport_url = rabbit://openstack:hunter2@rabbit.example:99999/\n',
        '[oslo_messaging_notifications] transport_url (a secret: value not shown) at test-1.conf:2 is not valid: ' +
          `${expected} (host #1 (rabbit.example) has port 99999, outside 1-65535)`,
      );
    });

    it('the transport URL is checked by the parser src/messaging connects with', () => {
      const url = 'rabbit://a:b@h1:5672,a:b@[::1]:5673/vhost?ssl=1';
      assert.equal(load(`[DEFAULT]\ntransport_url = ${url}\n`).config.DEFAULT.transport_url, url);
    });

    it('nothing logged while loading carries a secret', () => {
      const { log } = load(
        '[placement]\npasswd = hunter2\n' +
          '[DEFAULT]\nnotification_transport_url = rabbit://n:hunter3@h/\n' +
          '[vnc]\nx = hunter4\n',
      );
      const text = JSON.stringify(log.lines);
      for (const secret of ['hunter2', 'hunter3', 'hunter4', 'rabbit-pw', 's3cret-pw']) {
        assert.ok(!text.includes(secret), secret);
      }
      assert.ok(log.lines.length > 0);
    });

    it('configForLog masks every secret option', () => {
      const { config } = load('[placement]\napplication_credential_secret = appcred-secret\n');
      const shown = configForLog(config);
      const text = JSON.stringify(shown);
      for (const secret of ['rabbit-pw', 's3cret-pw', 'appcred-secret']) assert.ok(!text.includes(secret), secret);
      assert.equal(shown.DEFAULT?.transport_url, '***');
      assert.equal(shown.placement?.password, '***');
      assert.equal(shown.placement?.application_credential_secret, '***');
      assert.equal(shown.service_user?.application_credential_secret, null);
      assert.equal(shown.placement?.username, 'nova');
    });
  });

  describe('several files and repeated keys', () => {
    it('a later file overrides an earlier one; an unset option keeps the earlier value', () => {
      const { config } = load(
        '[DEFAULT]\nreport_interval = 5\nservice_down_time = 50\n',
        '[DEFAULT]\nreport_interval = 7\n',
      );
      assert.equal(config.DEFAULT.report_interval, 7);
      assert.equal(config.DEFAULT.service_down_time, 50);
    });

    it('the last assignment in a file wins', () => {
      assert.equal(load('[DEFAULT]\nreport_interval = 5\nreport_interval = 6\n').config.DEFAULT.report_interval, 6);
    });

    it('an invalid value that a later file overrides is never looked at, as in oslo', () => {
      const { config } = load('[DEFAULT]\nreport_interval = x\n', '[DEFAULT]\nreport_interval = 3\n');
      assert.equal(config.DEFAULT.report_interval, 3);
    });

    it('loadConfig reads real files in order', () => {
      const files = tempFiles({ 'nova.conf': MINIMAL, 'berth.conf': '[DEFAULT]\nhost = layered\n' });
      const config = loadConfig([files['nova.conf'] as string, files['berth.conf'] as string], {
        logger: captureLogger().logger,
      });
      assert.equal(config.DEFAULT.host, 'layered');
    });

    it('loadConfig names a file it cannot read, and wants at least one', () => {
      const logger = captureLogger().logger;
      assert.throws(() => loadConfig(['/nonexistent/berth.conf'], { logger }), {
        name: 'ConfigError',
        message: 'Cannot read config file /nonexistent/berth.conf: ENOENT',
      });
      assert.throws(() => loadConfig([], { logger }), {
        name: 'ConfigError',
        message: 'No configuration file given: use --config-file PATH',
      });
    });

    it('a missing transport_url stops start-up', () => {
      const logger = captureLogger().logger;
      assert.throws(
        () => loadConfigFromSources([{ path: 'a.conf', text: MINIMAL.replace(/^transport_url.*$/m, '') }], { logger }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.section === 'DEFAULT' &&
          error.option === 'transport_url' &&
          error.message === '[DEFAULT] transport_url is required but not set (read a.conf)',
      );
    });
  });

  describe('deprecated names', () => {
    it('are read, with one warning each', () => {
      const { config, log } = load(
        '[DEFAULT]\nrabbit_ha_queues = true\nnotification_driver = messaging\nnotification_format = both\n' +
          '[oslo_messaging_rabbit]\nrabbit_use_ssl = true\nkombu_reconnect_timeout = 30\n' +
          '[placement]\ntenant_name = svc\n',
      );
      assert.equal(config.oslo_messaging_rabbit.rabbit_ha_queues, true);
      assert.equal(config.oslo_messaging_rabbit.ssl, true);
      assert.equal(config.oslo_messaging_rabbit.kombu_missing_consumer_retry_timeout, 30);
      assert.deepEqual(config.oslo_messaging_notifications.driver, ['messaging']);
      assert.equal(config.notifications.notification_format, 'both');
      assert.equal(config.placement.project_name, 'svc');
      const deprecations = log.at('warn').filter((line) => line.msg.includes('is deprecated'));
      assert.deepEqual(deprecations.map((line) => line.msg).sort(), [
        'Option [DEFAULT] notification_driver is deprecated: use [oslo_messaging_notifications] driver',
        'Option [DEFAULT] notification_format is deprecated: use [notifications] notification_format',
        'Option [DEFAULT] rabbit_ha_queues is deprecated: use [oslo_messaging_rabbit] rabbit_ha_queues',
        'Option [oslo_messaging_rabbit] kombu_reconnect_timeout is deprecated: ' +
          'use [oslo_messaging_rabbit] kombu_missing_consumer_retry_timeout',
        'Option [oslo_messaging_rabbit] rabbit_use_ssl is deprecated: use [oslo_messaging_rabbit] ssl',
        'Option [placement] tenant_name is deprecated: use [placement] project_name',
      ]);
    });

    it('in one file the current name wins; a later file wins whatever the name (oslo order)', () => {
      const sameFile = load('[oslo_messaging_rabbit]\nrabbit_use_ssl = true\nssl = false\n');
      assert.equal(sameFile.config.oslo_messaging_rabbit.ssl, false);
      assert.equal(
        load('[oslo_messaging_rabbit]\nssl = false\n', '[oslo_messaging_rabbit]\nrabbit_use_ssl = true\n').config
          .oslo_messaging_rabbit.ssl,
        true,
      );
    });

    it('multi-valued options collect old and new names in oslo order', () => {
      const { config } = load(
        '[oslo_messaging_notifications]\ndriver = log\n[DEFAULT]\nnotification_driver = noop\n',
        '[oslo_messaging_notifications]\ndriver = messaging\ndriver = messagingv2\n',
      );
      // oslo.config 9.0.0 gives ['x', 'a', 'b', 'c'] for the same layout.
      assert.deepEqual(config.oslo_messaging_notifications.driver, ['noop', 'log', 'messaging', 'messagingv2']);
    });
  });

  describe('[image_cache]', () => {
    it("reads Nova's old [DEFAULT] names, with a warning each", () => {
      const { config, log } = load('[DEFAULT]\nimage_cache_manager_interval = -1\nremove_unused_base_images = false\n');
      assert.equal(config.image_cache.manager_interval, -1);
      assert.equal(config.image_cache.remove_unused_base_images, false);
      assert.deepEqual(log.at('warn').filter((line) => line.msg.includes('is deprecated')).map((line) => line.msg).sort(), [
        'Option [DEFAULT] image_cache_manager_interval is deprecated: use [image_cache] manager_interval',
        'Option [DEFAULT] remove_unused_base_images is deprecated: use [image_cache] remove_unused_base_images',
      ]);
    });

    it('refuses what Nova refuses: an interval below -1, a concurrency below 1', () => {
      const at = 'at test-1.conf:2 is not valid';
      rejects('[image_cache]\nmanager_interval = -2\n', `[image_cache] manager_interval = "-2" ${at}: expected an integer >= -1`);
      rejects('[image_cache]\nprecache_concurrency = 0\n', `[image_cache] precache_concurrency = "0" ${at}: expected an integer >= 1`);
    });
  });

  describe('"$" substitution', () => {
    it("expands references like oslo's string.Template", () => {
      const { config } = load(
        '[DEFAULT]\nhost = h1\npybasedir = /opt/nova\nstate_path = $pybasedir/state\n' +
          'hypervisor_hostname = ${host}.example\ninstance_name_template = cost $5 and $\n' +
          '[glance]\nendpoint_override = http://$my_ip:9292\n[placement]\npassword = pa$$w\\$rd\n' +
          '[service_user]\nproject_name = ${placement.project_name}\n',
      );
      assert.equal(config.DEFAULT.state_path, '/opt/nova/state');
      assert.equal(config.DEFAULT.hypervisor_hostname, 'h1.example');
      assert.equal(config.DEFAULT.instance_name_template, 'cost $5 and $');
      assert.equal(config.glance.endpoint_override, `http://${config.DEFAULT.my_ip}:9292`);
      assert.equal(config.placement.password, 'pa$w$rd');
      assert.equal(config.service_user.project_name, 'service');
    });

    it('a reference to nothing stops start-up, as NoSuchOptError does in oslo', () => {
      rejects(
        '[DEFAULT]\nstate_path = $nowhere/state\n',
        '[DEFAULT] state_path at test-1.conf:2 refers to $nowhere, which is not set in any config file ' +
          '(write "$$" for a literal "$")',
      );
    });

    it('a "$" in a secret that refers to nothing is reported without the secret', () => {
      rejects(
        '[placement]\npassword = abc$defg\n',
        '[placement] password at test-1.conf:2 refers to a "$" name not set in any config file ' +
          '(write "$$" for a literal "$")',
      );
    });

    it('a reference loop stops start-up', () => {
      rejects(
        '[DEFAULT]\nhost = $hypervisor_hostname\n',
        '[DEFAULT] host refers back to itself (through "$" references or defaults)',
      );
    });
  });

  describe('unknown options and sections', () => {
    it('warn once per section, listing the option names (not values)', () => {
      const { log } = load(
        '[DEFAULT]\ncompute_driver = libvirt.LibvirtDriver\nreport_intervall = 5\n' +
          '[docker]\nhost = x\n[dockr]\nhost_url = y\n',
        '[DEFAULT]\ncompute_driver = fake.FakeDriver\npybasedir = /usr\n',
      );
      const warnings = log.at('warn').map((line) => ({ msg: line.msg, section: line.section, options: line.options }));
      assert.deepEqual(warnings, [
        {
          msg: 'Berth ignores unknown options in [DEFAULT]: compute_driver, pybasedir, report_intervall',
          section: 'DEFAULT',
          options: ['compute_driver', 'pybasedir', 'report_intervall'],
        },
        { msg: 'Berth ignores unknown options in [docker]: host', section: 'docker', options: ['host'] },
        { msg: 'Berth ignores the unknown section [dockr] with: host_url', section: 'dockr', options: ['host_url'] },
      ]);
    });

    it("Nova's own sections get a single debug line", () => {
      const { log } = load(
        '[database]\nconnection = mysql://\n[neutron]\nauth_type = password\n[vnc]\nenabled = false\n',
      );
      assert.deepEqual(log.at('warn'), []);
      const debug = log.at('debug').filter((line) => line.msg.startsWith('Berth does not read'));
      assert.equal(debug.length, 1);
      assert.equal(debug[0]?.msg, 'Berth does not read these Nova sections: database, neutron, vnc');
    });

    it('deprecated names are not unknown', () => {
      const { log } = load('[DEFAULT]\nrabbit_ha_queues = false\n');
      assert.deepEqual(
        log.at('warn').filter((line) => line.msg.startsWith('Berth ignores')),
        [],
      );
    });
  });

  describe('the result', () => {
    const { config } = load();

    it('is deeply frozen', () => {
      assert.ok(Object.isFrozen(config));
      assert.ok(Object.isFrozen(config.docker));
      assert.ok(Object.isFrozen(config.docker.capabilities));
      assert.throws(() => {
        (config.docker.capabilities as string[]).push('SYS_ADMIN');
      }, TypeError);
    });

    it('is typed from the schema', () => {
      // Compile-time checks: these lines fail to build if BerthConfig loses its shape.
      const ratio: number | null = config.DEFAULT.cpu_allocation_ratio;
      const host: string = config.DEFAULT.host;
      const action: 'reap' | 'log' | 'shutdown' | 'noop' = config.DEFAULT.running_deleted_instance_action;
      const caps: readonly string[] = config.docker.capabilities;
      const driver: 'docker' | 'fake' = config.docker.driver;
      // @ts-expect-error the configuration is read-only
      const attempt = (c: BerthConfig): void => void (c.DEFAULT.host = 'x');
      assert.equal(typeof attempt, 'function');
      assert.deepEqual([ratio, typeof host, action, caps.length, driver], [null, 'string', 'reap', 10, 'docker']);
    });
  });
});
