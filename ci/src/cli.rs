//! Command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::accel::AccelChoice;

/// Host runner for zonecopy: starts the zonecopy-vhost backend, boots Linux
/// under QEMU with an emulated zoned SCSI disk attached, reads the guest's
/// KTAP verdict from the serial console and writes JUnit XML.
/// The `--qemu` default.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// The guest's NIC for NVMe/TCP (`--guest-net`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GuestNet {
    /// A tap device in a private network namespace when the run has
    /// NVMe/TCP namespaces and the runner can create one, else user.
    Auto,
    /// QEMU user networking (slirp).
    User,
    /// The tap device, or fail.
    Tap,
}

/// The transport of the NVMe namespaces (`--nvme-transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NvmeTransport {
    /// NVMe/TCP through QEMU user networking.
    Tcp,
    /// A PCI NVMe controller over vfio-user.
    Pcie,
}

#[derive(Debug, Parser)]
#[command(name = "zonecopy-ci", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run one test suite on one kernel. Exit 0 only if the guest's KTAP
    /// says it passed (plan met, no failures, no crash, no timeout).
    Suite(SuiteArgs),
    /// Run the matrix kernels x suites x personalities x transports (or
    /// one deterministic shard of it, --shard K/N) cell by cell; prints a
    /// table and "N passed, M failed" counting suite runs (cells).
    Matrix(MatrixArgs),
    /// Merge the outputs of runs, matrices or shards (directories holding
    /// kcidb.json, searched recursively) into one report: report.html (one
    /// self-contained page, SVG plots of `# bench` numbers) and report.md.
    Report(ReportArgs),
    /// Find the first bad commit of a --kernel-tree between --good and
    /// --bad with `git bisect run` and the runner: a commit whose kernel
    /// does not build is skipped (125); prints the first bad commit and
    /// the evidence of its run.
    Bisect(BisectArgs),
    /// One step of `bisect` (run by `git bisect run` in the tree).
    #[command(hide = true)]
    BisectStep(BisectArgs),
    /// Boot a kernel with the same devices plus the host root (read-only
    /// 9p) and networking, run CMD in a chroot of the host root, exit with
    /// its status (like virtme-ng). No CMD: interactive shell (Ctrl-A X
    /// quits QEMU).
    Run(RunArgs),
    /// One backend, two boots: the suite is cut off mid-run (QEMU killed
    /// with SIGKILL after N KTAP result lines), the backend must survive,
    /// then the same suite against the same backend must pass. Ends with
    /// "reconnect: N passed, M failed".
    Reconnect(ReconnectArgs),
    /// Boot the suite (must pass), stop the backend (SIGTERM), start a new
    /// one on the same backing files and check through its control socket
    /// that every zone's condition, write pointer and data came back as
    /// the first backend reported them. Ends with "restart: N passed, M
    /// failed" (counting checks).
    Restart(RestartArgs),
    /// Whole-stack durability: the `kill` suite writes to an NVMe/TCP
    /// namespace of a second backend, which is killed with SIGKILL and
    /// started again every couple of seconds (at least 50 times); the guest
    /// reconnects each time and finally checks that no acknowledged write
    /// was lost. Ends with "kill: N passed, M failed".
    Kill(KillArgs),
    /// Replay the trace a run kept (DIR/trace/backend.trace, or a trace
    /// file) without booting anything: zonecopy-vhost trace replay runs
    /// every command again on the saved device images and compares each
    /// result; exit 0 only when nothing diverged.
    Replay(ReplayArgs),
    /// Print the summary of bench logs already taken (what
    /// scripts/bench.sh prints after a run and for --table), without
    /// booting anything.
    ///
    /// Input: the logs, read in the order given as one text (carriage
    /// returns dropped): guest console logs, the runner's output and
    /// `cargo bench` output. It reads their `# bench NAME key=value ...`
    /// lines (a cell measured in rounds is `KEY=<median>
    /// KEY_range=<min>..<max>`), the copy engine's result rows, the
    /// `# ledger` blocks and the runner's `SUITE on KERNEL: ... (boot SECS
    /// s, ...)` lines; everything else is ignored.
    ///
    /// Output (stdout), each section only when its lines are there: the
    /// cost of recording, the copy engine, the large zoned device, the
    /// offloaded copies, copy_file_range, fio (with each cell's spread and
    /// the -vs- ratio rows), the timing model, the ledgers, the guest
    /// network, the boot breakdown, and issue 17's targets, each "met"
    /// (its whole range clears it), "NOT met" (its whole range misses it)
    /// or "undecided" (the range straddles it). With none of them: "no #
    /// bench lines".
    ///
    /// Exit status: 0, or 1 when a file could not be read (the others are
    /// still summarized). Never non-zero for slow numbers.
    BenchSummary(BenchSummaryArgs),
}

/// `bench-summary FILE...`.
#[derive(Debug, Args)]
pub struct BenchSummaryArgs {
    /// Log files (console.log, runner output, cargo bench output).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// How long each boot may take and where the logs go: every command that
/// boots.
#[derive(Debug, Args, Clone)]
pub struct Limits {
    /// Limit per boot in seconds from QEMU's start; QEMU is killed then.
    /// The bench suite gets at least what its fio plan needs
    /// (--fio-rounds x --fio-runtime over its devices, plus 240 s).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
    /// Directory for logs (junit.xml, kcidb.json, console and backend
    /// logs; a boot or step per subdirectory where a command has several)
    /// [default: <workspace>/out/<command>-<suite>-<kernel>-<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// One suite on one kernel with its VM: `suite`, `reconnect`, `restart`.
#[derive(Debug, Args, Clone)]
pub struct BootArgs {
    /// Kernel: a cached name (6.1, 6.12 = $ZONECOPY_CACHE/kernels/NAME/
    /// vmlinux, else bzImage), a shared copy-offload kernel (7.2-series,
    /// 7.2-fixed = $ZONECOPY_SHARED/kernels/linux-7.2-copy-offload/
    /// bzImage-series|-fixed, default shared dir <workspace>/../shared) or
    /// a path to a bzImage/vmlinux.
    #[arg(
        long,
        value_name = "NAME|PATH",
        required_unless_present = "kernel_tree",
        default_value = ""
    )]
    pub kernel: String,
    /// Suite the guest runs (passed as zonecopy.suite=NAME).
    #[arg(long, default_value = "smoke", value_name = "NAME")]
    pub suite: String,
    #[command(flatten)]
    pub run: SuiteVm,
}

/// What every command that boots suites shares (suite, matrix, bisect,
/// reconnect, restart): networking, limits and the VM.
#[derive(Debug, Args, Clone)]
pub struct SuiteVm {
    /// Add user-mode networking (virtio-net, guest 10.0.2.15, host 10.0.2.2)
    /// and the backend's control port (zonecopy.control=10.0.2.2:PORT).
    /// Implied by suites xcopy, nvme, kcopy, bench, zbc, diff-nvme and by
    /// --ns.
    #[arg(long)]
    pub net: bool,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub vm: VmArgs,
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub boot: BootArgs,
}

#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Comma-separated kernels (names such as 6.1, 6.12, 7.2-series,
    /// 7.2-fixed, or paths; see `suite --kernel`).
    #[arg(long, value_delimiter = ',', required = true, value_name = "K1,K2,...")]
    pub kernels: Vec<String>,
    /// Comma-separated suites the guest runs on every kernel.
    #[arg(
        long = "suite",
        alias = "suites",
        value_delimiter = ',',
        default_value = "smoke",
        value_name = "S1,S2,..."
    )]
    pub suites: Vec<String>,
    /// Comma-separated controller personalities (see --personality); each
    /// cell runs with one [default: the backend's own only].
    #[arg(long, value_delimiter = ',', value_name = "P1,P2,...")]
    pub personalities: Vec<String>,
    /// Comma-separated NVMe transports [default: tcp, the only one here].
    #[arg(long, value_delimiter = ',', value_name = "T1,T2,...")]
    pub transports: Vec<String>,
    /// Run only the K-th of N disjoint slices of the expanded matrix
    /// (cells K, K+N, K+2N, ... in --list order): N jobs given the same
    /// axes run every cell exactly once.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::shard::Shard>,
    /// Print the expanded matrix (with each cell's shard under --shard)
    /// and exit.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub run: SuiteVm,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run, matrix or shard output directories (searched for kcidb.json).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where report.html and report.md go [default: <workspace>/out/report-<UTC time>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print only the results table (Markdown, no times) and write nothing:
    /// equal for equal results, however they were sharded.
    #[arg(long)]
    pub table: bool,
    /// Title of the page.
    #[arg(long, default_value = "zonecopy results", value_name = "TEXT")]
    pub title: String,
}

/// How a known bug's expected failure (XFAIL) counts in a bisect step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XfailAs {
    /// The run passes as the project's verdict says (hunt regressions).
    Good,
    /// The bug showed: bad (hunt the commit that brought a known bug in).
    Bad,
}

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// Known good revision.
    #[arg(long, value_name = "REV")]
    pub good: String,
    /// Known bad revision.
    #[arg(long, value_name = "REV")]
    pub bad: String,
    /// Suite every step runs.
    #[arg(long, default_value = "smoke", value_name = "NAME")]
    pub suite: String,
    /// Judge each step by this test case alone (its flattened KTAP name,
    /// e.g. zns.write_after_error, or a parent: every case below it). The
    /// suite still runs whole: its tests build on each other's state.
    #[arg(long, value_name = "NAME")]
    pub test: Option<String>,
    /// Whether a known bug's XFAIL makes a commit good or bad.
    #[arg(long, value_enum, default_value_t = XfailAs::Good)]
    pub xfail_as: XfailAs,
    #[command(flatten)]
    pub run: SuiteVm,
}

#[derive(Debug, Args)]
pub struct ReconnectArgs {
    /// Kill QEMU once the guest has printed this many KTAP result lines
    /// (`ok`/`not ok`, subtests included); must be fewer than the suite has.
    #[arg(long, default_value_t = 5, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub kill_after_results: u64,
    #[command(flatten)]
    pub boot: BootArgs,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub boot: BootArgs,
}

#[derive(Debug, Args)]
#[command(mut_arg("timeout", |a| a.default_value("600")))]
pub struct KillArgs {
    /// Kernel name or path (see `suite --kernel`).
    #[arg(long, default_value = "6.12", value_name = "NAME|PATH")]
    pub kernel: String,
    /// Shortest pause before a kill, in milliseconds (the guest must have
    /// reconnected: it retries one second after a loss).
    #[arg(long, default_value_t = 1800, value_name = "MS")]
    pub min_interval_ms: u64,
    /// Longest pause before a kill, in milliseconds.
    #[arg(long, default_value_t = 2600, value_name = "MS")]
    pub max_interval_ms: u64,
    /// Stop killing after this many kills (the guest stops writing after
    /// 50 controller resets).
    #[arg(long, default_value_t = 70, value_name = "N")]
    pub max_kills: u32,
    /// The transport of the victim: `nvme` (NVMe/TCP, the guest's nvme-tcp
    /// reconnects) or `scsi` (vhost-user-scsi, QEMU reconnects and the
    /// backend serves again what was in flight).
    #[arg(long, value_enum, default_value_t = KillTransport::Nvme)]
    pub transport: KillTransport,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub vm: VmArgs,
}

/// `zonecopy-ci kill --transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KillTransport {
    Nvme,
    Scsi,
}

#[derive(Debug, Args)]
#[command(mut_arg("timeout", |a| a
    .default_value("0")
    .help("Limit in seconds from QEMU's start; 0 = none")))]
pub struct RunArgs {
    /// Kernel name or path (see `suite --kernel`).
    #[arg(long, default_value = "6.12", value_name = "NAME|PATH")]
    pub kernel: String,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub vm: VmArgs,
    /// Command to run in the guest (shell-quoted and joined; use
    /// `sh -c '...'` for pipelines). Empty: interactive shell.
    #[arg(last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// Options shared by every command that boots a VM.
#[derive(Debug, Args, Clone)]
pub struct VmArgs {
    /// Keep the backend's trace (every command, zonecopy-vhost --trace)
    /// in the output folder's trace/ even when the run passes (a failed
    /// run's is always kept); `zonecopy-ci replay DIR` replays it.
    #[arg(long)]
    pub keep_trace: bool,
    /// Do not record a trace (suite runs record one, but the bench suite).
    #[arg(long, conflicts_with = "keep_trace")]
    pub no_trace: bool,
    /// Boot a kernel built from this Linux source tree instead of --kernel:
    /// images/config-fragment is merged into its config (defconfig when it
    /// has none) and it is built out of tree under
    /// $ZONECOPY_CACHE/kernel-builds/ by scripts/build-kernel.sh
    /// (incremental; the first build takes a while). A --kernel that names
    /// a source tree directory does the same.
    #[arg(long, value_name = "DIR")]
    pub kernel_tree: Option<PathBuf>,
    /// A logical unit of the emulated SCSI target; repeat for LUN 0, 1, ...
    /// SPEC is comma-separated key=value, as for zonecopy-vhost:
    /// kind=hm|ha|disk [hm] (ha: host aware, write preferred zones);
    /// size=BYTES; bs=512|4096 logical block bytes [4096]; for hm and ha:
    /// zone=BYTES (zone size), conv=N conventional zones [1], urswrz=0|1
    /// [1]; for hm only: cap=BYTES (zone capacity, <= zone) [zone],
    /// max-open=N, max-active=N; file=PATH backing file [in the temp dir,
    /// removed after the run]. BYTES take K/M/G/T (powers of 1024) suffixes.
    /// Without --lun: "kind=hm,size=256M,bs=4096,zone=4M,cap=4M,conv=2"
    /// "kind=hm,size=128M,bs=512,zone=8M,cap=6M,conv=1"
    /// "kind=disk,size=64M,bs=512". With --backend-socket, give the LUNs
    /// that backend serves: they go on the kernel command line.
    #[arg(long = "lun", value_name = "SPEC")]
    pub luns: Vec<String>,
    /// An NVMe namespace served over NVMe/TCP; repeat for NSID 1, 2, ...
    /// SPEC as for --lun with kind=zns|nvm [zns] (zns: zone=BYTES,
    /// cap=BYTES, max-open=N, max-active=N; no conventional zones) plus the
    /// copy limits mssrl=N, mcl=N (blocks), msrc=N (0's based)
    /// [backend's defaults]; file=PATH [temp dir]. Any namespace starts the
    /// backend's NVMe/TCP target on a free 127.0.0.1 port and gives the
    /// guest a NIC and zonecopy.nvme=traddr=10.0.2.2,trsvcid=PORT,nqn=NQN
    /// (with --nvme-transport pcie: a PCIe controller over vfio-user).
    /// Without --ns, suites nvme and kcopy get
    /// "kind=zns,size=256M,bs=4096,zone=4M,cap=4M" "kind=nvm,size=128M,bs=4096"
    /// "kind=nvm,size=64M,bs=4096".
    #[arg(long = "ns", value_name = "SPEC")]
    pub namespaces: Vec<String>,
    /// How the guest reaches the --ns namespaces: tcp (the guest's
    /// nvme-tcp driver connects to the backend's NVMe/TCP target) or pcie
    /// (the backend serves a PCI NVMe controller over vfio-user and the
    /// guest's nvme-pci driver finds it: needs QEMU 10.1 or later, by
    /// default scripts/qemu-sid, whose root scripts/setup.sh builds, unless
    /// --qemu names another). The guest gets
    /// zonecopy.nvme=transport=pcie,nqn=NQN.
    #[arg(long, value_enum, default_value_t = NvmeTransport::Tcp, value_name = "NAME")]
    pub nvme_transport: NvmeTransport,
    /// The guest's NIC: user (QEMU user networking), tap (a tap device in
    /// a private network namespace of the runner, with checksum and
    /// segmentation offloads and a 65520-byte MTU; needs root and
    /// /dev/net/tun; nothing in it routes off the machine) or auto (tap
    /// for suites with NVMe/TCP namespaces when it can be set up, else
    /// user). Either way the guest reaches the host as 10.0.2.2.
    #[arg(long, value_enum, default_value_t = GuestNet::Auto, value_name = "NAME")]
    pub guest_net: GuestNet,
    /// Bench suite: how often each fio cell (device x job) is measured,
    /// the devices interleaved job by job; medians and spreads are
    /// reported and every ratio is the median of the per-round ratios
    /// [zonecopy_contract::fio::ROUNDS].
    #[arg(long, value_name = "N")]
    pub fio_rounds: Option<u32>,
    /// Bench suite: seconds of each fio job run
    /// [zonecopy_contract::fio::RUNTIME_S].
    #[arg(long, value_name = "SECS")]
    pub fio_runtime: Option<u32>,
    /// With --nvme-transport pcie: the backend offers no Doorbell Buffer
    /// Config (zonecopy-vhost --nvme-pcie-no-shadow-doorbells), so the
    /// guest writes every doorbell register (to measure what shadow
    /// doorbells save).
    #[arg(long)]
    pub no_shadow_doorbells: bool,
    /// NQN of the backend's NVMe subsystem.
    #[arg(long, default_value = zonecopy_contract::nvme::DEFAULT_NQN, value_name = "NQN")]
    pub nqn: String,
    /// What the backend's NVMe controller claims (zonecopy-vhost
    /// --personality): nvme-2.1 (the backend's default: Copy formats 0-3,
    /// 2/3 only after Host Behavior Support enables them), nvme-2.0-fmt0,
    /// nvme-2.0-fmt01, nvme-2.1-lax (no CDFE needed), no-copy.
    #[arg(long, value_name = "NAME")]
    pub personality: Option<String>,
    /// A known bug of the booted kernel, by id (repeat, or comma-separated),
    /// added to the kernel's entries in the runner's known-bugs table
    /// (7.2-series: copy-error-lost) and passed as zonecopy.xfail=: tests
    /// hitting it report XFAIL, and XPASS (a failure) if it does not show.
    #[arg(long = "xfail", value_name = "ID")]
    pub xfail: Vec<String>,
    /// zonecopy-vhost binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    pub backend: Option<PathBuf>,
    /// Use an already running backend's socket instead of starting one.
    #[arg(long, value_name = "PATH")]
    pub backend_socket: Option<PathBuf>,
    /// Seconds to wait for the backend's socket to appear.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub backend_wait: u64,
    /// Kernel modules directory (lib/modules/VERSION) for a --kernel PATH
    /// [default for cached kernels: $ZONECOPY_CACHE/kernels/NAME/modules;
    /// for a path: none, everything built in].
    #[arg(long, value_name = "DIR")]
    pub modules_dir: Option<PathBuf>,
    /// Modules to put in the initramfs (space-separated; passed to the
    /// image builder as --modules) [default: the builder's].
    #[arg(long, value_name = "LIST")]
    pub modules: Option<String>,
    /// Ready-made initramfs to boot instead of building one.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Guest binary put into the initramfs
    /// [default: <workspace>/target/x86_64-unknown-linux-gnu/release/zonecopy-guest].
    #[arg(long, value_name = "PATH")]
    pub guest_bin: Option<PathBuf>,
    /// Initramfs builder [default: <workspace>/images/build-initramfs.sh].
    #[arg(long, value_name = "PATH")]
    pub initramfs_script: Option<PathBuf>,
    /// CPU accelerator: auto = TCG unless a cached KVM probe boot (15 s at
    /// most, once per kernel and QEMU version) reaches userspace.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// QEMU binary.
    #[arg(long, default_value = DEFAULT_QEMU, value_name = "PATH")]
    pub qemu: PathBuf,
    /// Firmware for -bios ("" = QEMU's default SeaBIOS).
    #[arg(long, default_value = crate::qemu::DEFAULT_BIOS, value_name = "PATH")]
    pub bios: PathBuf,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub memory: u64,
    /// Extra kernel command line, appended.
    #[arg(long, default_value = "", value_name = "ARGS")]
    pub append: String,
    /// Seconds the guest may take to power off after its last result.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub poweroff_grace: u64,
    /// Copy the guest console to stdout as it arrives.
    #[arg(long, short)]
    pub verbose: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_forms() {
        let c = Cli::try_parse_from([
            "zonecopy-ci",
            "suite",
            "--kernel",
            "6.1",
            "--lun",
            "kind=disk,size=1M",
            "--lun",
            "kind=disk,size=2M",
            "--timeout",
            "60",
        ])
        .unwrap();
        let Cmd::Suite(s) = c.command else {
            panic!("not suite")
        };
        assert_eq!(s.boot.run.vm.luns.len(), 2);
        assert_eq!(s.boot.suite, "smoke");
        assert_eq!(s.boot.run.limits.timeout, 60);

        let c = Cli::try_parse_from(["zonecopy-ci", "matrix", "--kernels", "6.1,6.12"]).unwrap();
        let Cmd::Matrix(m) = c.command else {
            panic!("not matrix")
        };
        assert_eq!(m.kernels, vec!["6.1", "6.12"]);

        let c = Cli::try_parse_from(["zonecopy-ci", "run", "--", "ls", "-l", "/dev"]).unwrap();
        let Cmd::Run(r) = c.command else {
            panic!("not run")
        };
        assert_eq!(r.cmd, vec!["ls", "-l", "/dev"]);
        assert_eq!(r.kernel, "6.12");
        assert_eq!(r.limits.timeout, 0, "run: no limit unless asked");

        let c = Cli::try_parse_from(["zonecopy-ci", "kill"]).unwrap();
        let Cmd::Kill(k) = c.command else {
            panic!("not kill")
        };
        assert_eq!((k.kernel.as_str(), k.limits.timeout), ("6.12", 600));

        let c = Cli::try_parse_from(["zonecopy-ci", "reconnect", "--kernel", "6.12"]).unwrap();
        let Cmd::Reconnect(r) = c.command else {
            panic!("not reconnect")
        };
        assert_eq!((r.boot.suite.as_str(), r.kill_after_results), ("smoke", 5));
        assert!(Cli::try_parse_from([
            "zonecopy-ci",
            "reconnect",
            "--kernel",
            "6.12",
            "--kill-after-results",
            "0"
        ])
        .is_err());

        let c = Cli::try_parse_from(["zonecopy-ci", "restart", "--kernel", "6.1"]).unwrap();
        let Cmd::Restart(r) = c.command else {
            panic!("not restart")
        };
        assert_eq!(
            (r.boot.kernel.as_str(), r.boot.suite.as_str()),
            ("6.1", "smoke")
        );
        assert_eq!(r.boot.run.limits.timeout, 300);

        let c = Cli::try_parse_from([
            "zonecopy-ci",
            "run",
            "--kernel",
            "7.2-fixed",
            "--ns",
            "kind=zns,size=64M,zone=4M",
            "--ns",
            "kind=nvm,size=8M",
            "--xfail",
            "a,b",
            "--xfail",
            "c",
            "--",
            "true",
        ])
        .unwrap();
        let Cmd::Run(r) = c.command else {
            panic!("not run")
        };
        assert_eq!(r.vm.namespaces.len(), 2);
        assert_eq!(r.vm.nqn, "nqn.2026-11.dev.zonecopy:sub0");
        assert_eq!(r.vm.xfail, vec!["a,b", "c"]);

        let c = Cli::try_parse_from([
            "zonecopy-ci",
            "matrix",
            "--kernels",
            "7.2-series,7.2-fixed",
            "--suite",
            "nvme",
            "--nqn",
            "nqn.x:y",
        ])
        .unwrap();
        let Cmd::Matrix(m) = c.command else {
            panic!("not matrix")
        };
        assert_eq!(m.kernels, vec!["7.2-series", "7.2-fixed"]);
        assert_eq!(m.run.vm.nqn, "nqn.x:y");
    }

    /// What scripts/test-all.sh, scripts/bench.sh and the READMEs run.
    #[test]
    fn the_scripts_invocations_parse() {
        for line in [
            "matrix --kernels 6.1,6.12,7.2 --suite smoke --out /tmp/o",
            "matrix --kernels 6.1,6.12,7.2-fixed --suite nvme",
            "matrix --kernels 6.1,6.12 --suite smoke --shard 1/3 --list",
            "suite --kernel 6.12 --suite diff-nvme",
            "suite --kernel 7.2-fixed --suite kcopy --personality nvme-2.0-fmt0",
            "suite --kernel 7.2-series --suite kcopy --ns kind=zns,size=256M,bs=4096,zone=4M,cap=4M \
             --ns kind=nvm,size=128M,bs=4096 --ns kind=nvm,size=64M,bs=4096,mssrl=256,mcl=64,msrc=3",
            "suite --kernel 6.12 --suite nvme --nvme-transport pcie",
            "suite --kernel 6.12 --suite bench --timeout 900 --out /tmp/vm --no-shadow-doorbells",
            "suite --kernel-tree /src/linux --suite smoke",
            "run --kernel 6.12 --nvme-transport pcie --ns kind=zns,size=16M,zone=4M \
             --ns kind=nvm,size=16M -- sh /g/nvme-cli-check.sh",
            "run -- sh -c ls",
            "reconnect --kernel 6.12 --suite smoke --kill-after-results 3",
            "restart --kernel 6.1 --suite smoke --timeout 100",
            "kill --kernel 6.12 --transport scsi --min-interval-ms 400 --max-interval-ms 900",
            "bisect --good a --bad b --kernel-tree /l --suite nvme --test zns.x --xfail-as bad",
            "report --out report a b",
        ] {
            let argv = std::iter::once("zonecopy-ci").chain(line.split_whitespace());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{line}: {e}");
            }
        }
    }
}

/// `zonecopy-ci replay`
#[derive(Debug, Args, Clone)]
pub struct ReplayArgs {
    /// A run's output folder (its trace/backend.trace), or a trace file.
    pub dir: PathBuf,
    /// The zonecopy-vhost binary (default: next to zonecopy-ci, then PATH).
    #[arg(long, value_name = "PATH")]
    pub backend: Option<PathBuf>,
}
