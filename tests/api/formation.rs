//! A real pg_auto_failover formation (Debian's `pg_autoctl`): a monitor and two Postgres nodes,
//! the second a synchronous standby of the first, started here as the `postgres` user in a
//! temporary folder on free ports, and tuned so that a failover takes seconds. Skipped when
//! `pg_autoctl` is not installed, unless `LATCH_REQUIRE_FAILOVER=1` makes that a failure.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

use crate::server::free_port;

const PG_AUTOCTL: &str = "/usr/bin/pg_autoctl";
const REQUIRE_FAILOVER_VAR: &str = "LATCH_REQUIRE_FAILOVER";

/// How long `pg_autoctl create` may take (the standby's is a base backup).
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the formation may take to show a primary and a secondary.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `pg_autoctl perform failover` may take (it waits up to 60 s on its own).
const PERFORM_FAILOVER_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a stopped `pg_autoctl run` may take to stop its Postgres and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// Every instance's settings beside pg_autoctl's own. They go in `postgresql.auto.conf`, which
/// Postgres reads last, so they win over the file pg_autoctl includes, and a standby's base
/// backup copies them from the primary.
const INSTANCE_SETTINGS: &str = "\
# pg_autoctl sizes shared memory for the machine (a quarter of its RAM) and there are three.
shared_buffers = '32MB'
# The tests kill processes, never the machine: the page cache survives a kill -9, and with
# fsync on, every commit waits for a disk that a parallel build keeps busy.
fsync = off
# A standby whose primary died waits this long (5 s by default) before it acts on a promotion.
wal_retrieve_retry_interval = '200ms'
";

/// The monitor's timings (defaults in parentheses): it acts on a dead primary within about 3 s
/// instead of 50 s. It takes a node for dead when the node's keeper has been silent *and* its
/// own health checks cannot connect (or when the keeper says Postgres is down), so a slow
/// machine that delays one of the two does not cause a false failover.
const MONITOR_SETTINGS: &str = "\
# How often the monitor connects to each node (5 s), how long a connection may take (5 s),
# and how many more times, how far apart, it tries before it marks the node unhealthy (2, 2 s).
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 2000
pgautofailover.health_check_max_retries = 2
pgautofailover.health_check_retry_delay = 250
# How long a node's keeper may be silent before it counts as gone (20 s); keepers report
# every second.
pgautofailover.node_considered_unhealthy_timeout = 2000
# How long the monitor waits for a dead primary to confirm its demotion before it lets the
# standby take writes (30 s): a killed primary never confirms.
pgautofailover.primary_demote_timeout = 1000
# No failover this long after the monitor starts (10 s), which a test may not wait out.
pgautofailover.startup_grace_period = 1000
";

/// A monitor and two nodes, each a `pg_autoctl run` in a process group of its own (so one
/// signal reaches its keeper and its Postgres), stopped and deleted when dropped.
pub struct Formation {
    dir: tempfile::TempDir,
    bin: PathBuf,
    monitor: Member,
    nodes: [Member; 2],
    databases_made: AtomicU32,
}

/// The monitor or a node: its name (its data folder and its log in the formation's folder),
/// its port, and its `pg_autoctl run`, `None` while stopped.
struct Member {
    name: &'static str,
    port: u16,
    run: Option<Child>,
}

impl Member {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            port: free_port(),
            run: None,
        }
    }
}

impl Formation {
    /// A running formation whose node 1 is the primary and node 2 its synchronous standby, or
    /// `None` when pg_auto_failover is not installed (and not required).
    pub async fn start() -> Option<Self> {
        let bin = installed_postgres_bin()?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        for folder in ["sock", "run", "config", "share"] {
            std::fs::create_dir(dir.path().join(folder)).expect("a folder for pg_autoctl");
        }
        // pg_autoctl refuses to run as root: it runs as `postgres`, which must own the folder.
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown the formation's folder");
        let mut formation = Self {
            dir,
            bin,
            monitor: Member::new("monitor"),
            nodes: [Member::new("node1"), Member::new("node2")],
            databases_made: AtomicU32::new(0),
        };
        formation.start_monitor().await;
        formation.start_node(0).await;
        formation.start_node(1).await;
        formation.wait_until_ready(READY_TIMEOUT).await;
        Some(formation)
    }

    /// The nodes' ports, node 1 first.
    pub fn ports(&self) -> [u16; 2] {
        [self.nodes[0].port, self.nodes[1].port]
    }

    /// Single-host URLs of `database` on node 1 and node 2.
    pub fn node_urls(&self, database: &str) -> [String; 2] {
        self.ports().map(|port| node_url(port, database))
    }

    /// libpq's multi-host URL of `database`: both nodes, connecting to whichever takes writes.
    pub fn multi_host_url(&self, database: &str) -> String {
        let [first, second] = self.ports();
        format!(
            "postgres://postgres@127.0.0.1:{first},127.0.0.1:{second}/{database}\
             ?target_session_attrs=read-write"
        )
    }

    /// Creates a fresh database on the current primary (the standby gets it by replication)
    /// and returns its name.
    pub async fn create_database(&self) -> String {
        let number = self.databases_made.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("latch_formation_{number}");
        let primary = self
            .primary_port()
            .await
            .expect("a primary to create a database on");
        let mut connection = connect(&node_url(primary, "postgres")).await;
        sqlx::query(AssertSqlSafe(format!(r#"create database "{name}""#)))
            .execute(&mut connection)
            .await
            .expect("create a database on the primary");
        name
    }

    /// Runs `pg_autoctl perform failover` and returns when it does: by then the standby has been
    /// promoted and the old primary follows it as a secondary.
    pub async fn perform_failover(&self) {
        let monitor = self.data_dir(self.monitor.name);
        let mut command = self.pg_autoctl();
        command
            .args(["perform", "failover", "--pgdata"])
            .arg(monitor);
        self.run_to_completion(command, "perform-failover", PERFORM_FAILOVER_TIMEOUT)
            .await;
    }

    /// Kills the primary's keeper and its Postgres at once (SIGKILL to the process group), as
    /// if its machine died, and returns the port it was on.
    pub async fn stop_primary_hard(&mut self) -> u16 {
        let port = self.primary_port().await.expect("a primary to stop");
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .expect("the primary is one of the nodes");
        let mut run = node
            .run
            .take()
            .expect("the primary's pg_autoctl is running");
        signal_group(&run, "KILL");
        let _ = run.wait();
        port
    }

    /// Starts again the node `stop_primary_hard` stopped and waits until it has rejoined as
    /// the secondary.
    pub async fn restart_stopped_node(&mut self) {
        let index = self
            .nodes
            .iter()
            .position(|node| node.run.is_none())
            .expect("a stopped node to restart");
        let run = self.spawn_run(self.nodes[index].name);
        self.nodes[index].run = Some(run);
        self.wait_until_ready(READY_TIMEOUT).await;
    }

    /// The port of the node the monitor names primary now, `None` while a failover is under
    /// way. A primary alone (its standby gone) counts: it takes writes.
    pub async fn primary_port(&self) -> Option<u16> {
        let mut monitor = self
            .monitor_connection()
            .await
            .expect("connect to the monitor");
        let ports: Vec<i32> = sqlx::query_scalar(
            "select nodeport from pgautofailover.node \
             where reportedstate = goalstate \
             and goalstate in ('single', 'wait_primary', 'primary')",
        )
        .fetch_all(&mut monitor)
        .await
        .expect("ask the monitor for the primary");
        assert!(ports.len() <= 1, "two primaries: {ports:?}");
        ports
            .first()
            .map(|port| u16::try_from(*port).expect("a port number"))
    }

    /// Waits until a node other than the one on `old` is primary and takes writes, and returns
    /// its port.
    pub async fn wait_for_primary_change(&self, old: u16, timeout: Duration) -> u16 {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(port) = self.primary_port().await
                && port != old
                && takes_writes(port).await
            {
                return port;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "no new primary within {timeout:?}; the monitor says:\n{}\n{}",
            self.describe().await,
            self.log_tails()
        );
    }

    /// Waits until the monitor shows one node as primary and the other as secondary, each in
    /// the state it was assigned.
    pub async fn wait_until_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.is_ready().await {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
        panic!(
            "the formation had no primary and secondary within {timeout:?}; the monitor says:\n\
             {}\n{}",
            self.describe().await,
            self.log_tails()
        );
    }

    async fn is_ready(&self) -> bool {
        // The monitor refuses connections until it has started.
        let Ok(mut monitor) = self.monitor_connection().await else {
            return false;
        };
        sqlx::query_scalar(
            "select count(*) filter (where reportedstate = 'primary' and goalstate = 'primary') = 1 \
             and count(*) filter (where reportedstate = 'secondary' and goalstate = 'secondary') = 1 \
             from pgautofailover.node",
        )
        .fetch_one(&mut monitor)
        .await
        .unwrap_or(false)
    }

    /// Each node's port, reported state and assigned state, for failure messages.
    async fn describe(&self) -> String {
        let Ok(mut monitor) = self.monitor_connection().await else {
            return "(the monitor does not answer)".to_owned();
        };
        let rows: Vec<(String, i32, String, String)> = sqlx::query_as(
            "select nodename, nodeport, reportedstate::text, goalstate::text \
             from pgautofailover.node order by nodeid",
        )
        .fetch_all(&mut monitor)
        .await
        .unwrap_or_default();
        rows.iter()
            .map(|(name, port, reported, assigned)| {
                format!("{name} on {port}: {reported}, assigned {assigned}\n")
            })
            .collect()
    }

    async fn monitor_connection(&self) -> Result<PgConnection, sqlx::Error> {
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/pg_auto_failover",
            self.monitor.port
        );
        PgConnection::connect(&url).await
    }

    /// Makes the monitor's data folder with the tests' settings, registers it with
    /// `pg_autoctl create monitor` and runs it.
    async fn start_monitor(&mut self) {
        let name = self.monitor.name;
        let settings = format!("{}{MONITOR_SETTINGS}", self.instance_settings());
        self.init_data_dir(name, &settings).await;
        let mut create = self.pg_autoctl();
        create
            .args(["create", "monitor", "--pgdata"])
            .arg(self.data_dir(name))
            .args(["--pgport", &self.monitor.port.to_string()])
            .args(["--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl"]);
        self.run_to_completion(create, "create-monitor", CREATE_TIMEOUT)
            .await;
        // `create monitor` has no --listen: it would listen on every address.
        let mut listen = self.pg_autoctl();
        listen
            .args(["config", "set", "--pgdata"])
            .arg(self.data_dir(name))
            .args(["postgresql.listen_addresses", "127.0.0.1"]);
        self.run_to_completion(listen, "listen-monitor", CREATE_TIMEOUT)
            .await;
        self.monitor.run = Some(self.spawn_run(name));
    }

    /// Registers node `index` with the monitor and runs it. Node 1 brings its own data folder
    /// (with the tests' settings) and becomes the primary; node 2 starts from a base backup
    /// of it and becomes its standby.
    async fn start_node(&mut self, index: usize) {
        let Member { name, port, .. } = self.nodes[index];
        if index == 0 {
            self.init_data_dir(name, &self.instance_settings()).await;
        }
        let monitor = format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover",
            self.monitor.port
        );
        let mut create = self.pg_autoctl();
        create
            .args(["create", "postgres", "--pgdata"])
            .arg(self.data_dir(name))
            .arg("--pghost")
            .arg(self.socket_dir())
            .args(["--pgport", &port.to_string(), "--listen", "127.0.0.1"])
            .args(["--hostname", "127.0.0.1", "--name", name])
            .args(["--monitor", &monitor, "--auth", "trust", "--no-ssl"]);
        self.run_to_completion(create, &format!("create-{name}"), CREATE_TIMEOUT)
            .await;
        self.nodes[index].run = Some(self.spawn_run(name));
    }

    /// Our own `initdb` rather than pg_autoctl's, so that the settings are in place before
    /// Postgres first starts (pg_autoctl takes over an existing data folder).
    async fn init_data_dir(&self, name: &str, settings: &str) {
        let mut initdb = self.as_postgres(&self.bin.join("initdb"));
        initdb
            .arg("--pgdata")
            .arg(self.data_dir(name))
            .args(["--username", "postgres", "--auth", "trust"])
            .args(["--encoding", "UTF8", "--no-locale", "--no-sync"])
            // 1 MB WAL segments rather than 16: each failover starts a segment, and a rejoining
            // node's pg_rewind copies them.
            .args(["--wal-segsize", "1"]);
        self.run_to_completion(initdb, &format!("initdb-{name}"), CREATE_TIMEOUT)
            .await;
        let auto_conf = self.data_dir(name).join("postgresql.auto.conf");
        let mut file = File::options()
            .append(true)
            .open(&auto_conf)
            .expect("open postgresql.auto.conf");
        std::io::Write::write_all(&mut file, settings.as_bytes())
            .expect("write the tests' settings");
    }

    /// `INSTANCE_SETTINGS`, and the sockets in the formation's folder rather than Debian's
    /// `/var/run/postgresql`, where a killed node would leave its socket behind.
    fn instance_settings(&self) -> String {
        format!(
            "{INSTANCE_SETTINGS}unix_socket_directories = '{}'\n",
            self.socket_dir().display()
        )
    }

    /// `pg_autoctl run` for `name`, in a process group of its own, its output appended to its
    /// log.
    fn spawn_run(&self, name: &str) -> Child {
        let mut run = self.pg_autoctl();
        run.arg("run").arg("--pgdata").arg(self.data_dir(name));
        run.process_group(0)
            .stdout(self.log(name))
            .stderr(self.log(name))
            .spawn()
            .expect("start pg_autoctl run")
    }

    /// Runs `command` (its output in the log `log_name`) in a process group of its own until
    /// it exits, and fails with the end of its log unless it succeeded in time. Whatever it
    /// left running (a `create` that failed half-way may leave its Postgres) is killed.
    async fn run_to_completion(&self, mut command: Command, log_name: &str, timeout: Duration) {
        let mut child = command
            .process_group(0)
            .stdout(self.log(log_name))
            .stderr(self.log(log_name))
            .spawn()
            .unwrap_or_else(|error| panic!("start {log_name}: {error}"));
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                _ => break None,
            }
        };
        if status.is_some_and(|status| status.success()) {
            return;
        }
        signal_group(&child, "KILL");
        let _ = child.wait();
        panic!(
            "{log_name} failed ({status:?}, None: timed out after {timeout:?}):\n{}",
            self.log_tail(log_name)
        );
    }

    /// `pg_autoctl` as the `postgres` user, with its configuration, state and pid files in the
    /// formation's folder and nothing from the tests' environment (PGPORT would change its
    /// defaults).
    fn pg_autoctl(&self) -> Command {
        self.as_postgres(Path::new(PG_AUTOCTL))
    }

    /// `program` run by setpriv as the `postgres` user. setpriv execs it, so the child's PID is
    /// the program's.
    fn as_postgres(&self, program: &Path) -> Command {
        let dir = self.dir.path();
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(program)
            .current_dir(dir)
            .env_clear()
            .env("HOME", dir)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("PGHOST", self.socket_dir())
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("share"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("TMPDIR", dir.join("run"))
            .stdin(Stdio::null());
        command
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The log `name` in the formation's folder, opened to append.
    fn log(&self, name: &str) -> File {
        File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("{name}.log")))
            .expect("open a pg_autoctl log")
    }

    /// The last lines of the log `name`.
    fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The last lines of every member's log.
    fn log_tails(&self) -> String {
        [&self.monitor, &self.nodes[0], &self.nodes[1]]
            .iter()
            .map(|member| format!("--- {}.log\n{}\n", member.name, self.log_tail(member.name)))
            .collect()
    }
}

impl Drop for Formation {
    /// SIGTERM to every `pg_autoctl run` (each stops its Postgres, fast, then exits), then
    /// SIGKILL to each process group, for whatever did not stop in time or was left behind.
    /// The folder goes after this, with the data.
    fn drop(&mut self) {
        let members = self.nodes.iter_mut().chain([&mut self.monitor]);
        let mut runs: Vec<Child> = members.filter_map(|member| member.run.take()).collect();
        for run in &runs {
            signal_group(run, "TERM");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        for run in &mut runs {
            while matches!(run.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            signal_group(run, "KILL");
            let _ = run.wait();
        }
    }
}

/// Sends `signal` to the process group led by `child` (`process_group(0)`: the group's ID is
/// the child's PID; `-PID` names the group).
fn signal_group(child: &Child, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A single-host URL of `database` on the node on `port`.
pub fn node_url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url)
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"))
}

/// Whether a new connection to the node on `port` may write: it has left recovery, and
/// pg_autoctl has lifted the read-only default it sets while a promotion is unconfirmed.
async fn takes_writes(port: u16) -> bool {
    let Ok(mut connection) = PgConnection::connect(&node_url(port, "postgres")).await else {
        return false;
    };
    sqlx::query_scalar(
        "select not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap_or(false)
}

/// The `bin` folder of the Postgres that has the pg_auto_failover extension, or `None` when
/// `pg_autoctl` or the extension is missing (a failure when `LATCH_REQUIRE_FAILOVER=1`).
fn installed_postgres_bin() -> Option<PathBuf> {
    let bin = Path::new(PG_AUTOCTL)
        .exists()
        .then(postgres_bin_with_the_extension)
        .flatten();
    assert!(
        bin.is_some() || std::env::var(REQUIRE_FAILOVER_VAR).as_deref() != Ok("1"),
        "{REQUIRE_FAILOVER_VAR}=1 but pg_autoctl or the pg_auto_failover extension is not installed"
    );
    if bin.is_none() {
        static SAID: std::sync::Once = std::sync::Once::new();
        crate::helpers::say_skipped(
            &SAID,
            "pg_auto_failover tests SKIPPED: `apt-get install postgresql-15-auto-failover \
             pg-auto-failover-cli` to run them.",
        );
    }
    bin
}

/// Debian keeps each major version's extensions in `/usr/share/postgresql/MAJOR/extension` and
/// its programs in `/usr/lib/postgresql/MAJOR/bin`; the newest version with the extension.
fn postgres_bin_with_the_extension() -> Option<PathBuf> {
    let shared = Path::new("/usr/share/postgresql");
    std::fs::read_dir(shared)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|major| {
            shared
                .join(major)
                .join("extension/pgautofailover.control")
                .exists()
        })
        .filter_map(|major| Some((major.parse::<u32>().ok()?, major)))
        .max()
        .map(|(_, major)| Path::new("/usr/lib/postgresql").join(major).join("bin"))
}

/// How long a promotion may take in these tests; they take seconds (see the module's settings).
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// A table `marks` in `database` on the primary on `port`, with one row `mark`, committed
/// while the standby is synchronous (so the commit waited for it).
async fn write_mark_synchronously(port: u16, database: &str, mark: &str) {
    let mut primary = connect(&node_url(port, database)).await;
    let standbys: String =
        sqlx::query_scalar("select current_setting('synchronous_standby_names')")
            .fetch_one(&mut primary)
            .await
            .expect("read synchronous_standby_names");
    assert_ne!(standbys, "", "the primary has a synchronous standby");
    write_mark(&mut primary, mark).await;
}

async fn write_mark(connection: &mut PgConnection, mark: &str) {
    sqlx::query("create table if not exists marks (mark text not null)")
        .execute(&mut *connection)
        .await
        .expect("create the marks table");
    sqlx::query("insert into marks values ($1)")
        .bind(mark)
        .execute(&mut *connection)
        .await
        .expect("write a mark");
}

async fn marks(connection: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar("select mark from marks order by mark")
        .fetch_all(connection)
        .await
        .expect("read the marks")
}

async fn is_in_recovery(connection: &mut PgConnection) -> bool {
    sqlx::query_scalar("select pg_is_in_recovery()")
        .fetch_one(connection)
        .await
        .expect("ask whether the node is a standby")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_before_a_failover_is_on_the_new_primary() {
    let started = Instant::now();
    let Some(formation) = Formation::start().await else {
        return;
    };
    eprintln!("formation ready in {:?}", started.elapsed());
    let database = formation.create_database().await;
    let old = formation.primary_port().await.expect("a primary");
    assert_eq!(old, formation.ports()[0], "node 1 starts as the primary");
    write_mark_synchronously(old, &database, "before the failover").await;
    let mut on_old = connect(&node_url(old, &database)).await;

    // Watched while the command runs: the new primary takes writes before the command returns,
    // which waits for the old primary to follow it.
    let failover = Instant::now();
    let command = async {
        formation.perform_failover().await;
        failover.elapsed()
    };
    let promotion = async {
        let new = formation
            .wait_for_primary_change(old, FAILOVER_TIMEOUT)
            .await;
        (new, failover.elapsed())
    };
    let (command_took, (new, promoted_after)) = tokio::join!(command, promotion);
    eprintln!(
        "perform failover: node on {new} takes writes after {promoted_after:?}, \
         the command returned after {command_took:?}"
    );

    let mut on_new = connect(&node_url(new, &database)).await;
    assert_eq!(marks(&mut on_new).await, ["before the failover"]);
    assert!(!is_in_recovery(&mut on_new).await, "the new primary");
    // The old primary was stopped to be demoted: a connection it had is gone, and it came back
    // as a standby that refuses writes.
    let held = sqlx::query("select 1").execute(&mut on_old).await;
    assert!(
        held.is_err(),
        "a connection survived the demotion: {held:?}"
    );
    let mut on_old = connect(&node_url(old, &database)).await;
    assert!(is_in_recovery(&mut on_old).await, "the old primary follows");
    let refused = sqlx::query("insert into marks values ('on the old primary')")
        .execute(&mut on_old)
        .await;
    assert!(refused.is_err(), "the old primary took a write");
    for url in formation.node_urls(&database) {
        assert_eq!(
            marks(&mut connect(&url).await).await,
            ["before the failover"]
        );
    }
    // libpq skips node 1, listed first but a standby now, for the node that takes writes.
    let psql = formation.bin.join("psql");
    let reached = port_libpq_reaches(&psql, &formation.multi_host_url(&database));
    assert_eq!(reached, new, "the multi-host URL reaches the new primary");
}

/// The port of the server libpq (psql) connects to for `url`.
fn port_libpq_reaches(psql: &Path, url: &str) -> u16 {
    let output = Command::new(psql)
        .args([url, "-XAtc", "select current_setting('port')"])
        .output()
        .expect("run psql");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "psql {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.trim().parse().expect("psql prints a port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_before_a_hard_stop_of_the_primary_is_on_the_promoted_standby() {
    let Some(mut formation) = Formation::start().await else {
        return;
    };
    let database = formation.create_database().await;
    let old = formation.primary_port().await.expect("a primary");
    write_mark_synchronously(old, &database, "1 before the stop").await;

    let stop = Instant::now();
    assert_eq!(formation.stop_primary_hard().await, old);
    let new = formation
        .wait_for_primary_change(old, FAILOVER_TIMEOUT)
        .await;
    eprintln!(
        "hard stop: node on {new} primary after {:?}",
        stop.elapsed()
    );

    let mut on_new = connect(&node_url(new, &database)).await;
    assert_eq!(marks(&mut on_new).await, ["1 before the stop"]);
    // Alone, the new primary takes writes without a synchronous standby to wait for.
    write_mark(&mut on_new, "2 while alone").await;

    let restart = Instant::now();
    formation.restart_stopped_node().await;
    eprintln!("stopped node rejoined in {:?}", restart.elapsed());
    assert_eq!(formation.primary_port().await, Some(new), "still primary");
    let mut on_old = connect(&node_url(old, &database)).await;
    assert!(is_in_recovery(&mut on_old).await, "the old primary follows");
    // Caught up when it became secondary, but replaying may lag a moment behind.
    let deadline = Instant::now() + Duration::from_secs(10);
    while marks(&mut on_old).await.len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(
        marks(&mut on_old).await,
        ["1 before the stop", "2 while alone"]
    );
}
