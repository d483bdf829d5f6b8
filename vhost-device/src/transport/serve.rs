//! The serve loop: one Unix socket per vhost-user device, one QEMU
//! connection at a time, reconnects without restarting.
//!
//! The devices and their in-memory zone state live in the [`Target`],
//! which outlives connections: when QEMU goes away (quits, is killed,
//! reboots the device) the next QEMU that connects to the same socket finds
//! the same logical units in the same state. Each connection gets a fresh
//! [`ScsiBackend`] and vhost-user daemon (guest memory, virtqueues, worker
//! threads), torn down completely before the next accept.
//!
//! Several endpoints can be served from one process by running
//! [`serve_scsi`] on several threads with one shared [`Shutdown`].

use std::{
    collections::BTreeMap,
    fs, io,
    os::unix::{
        fs::{FileTypeExt, PermissionsExt},
        io::{AsRawFd, FromRawFd, OwnedFd},
        net::{UnixListener, UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use log::{error, info, warn};
use vhost::vhost_user::{Error as VhostUserError, Listener};
use vhost_user_backend::{Error as DaemonError, ShutdownHandle, VhostUserDaemon};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::{
    epoll::{ControlOperation, Epoll, EpollEvent, EventSet},
    eventfd::{EventFd, EFD_NONBLOCK},
};

use super::vhost_user_scsi::ScsiBackend;
use crate::scsi::Target;

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("socket {path:?}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("socket {0:?} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("socket {0:?} is in use by a running process")]
    InUse(PathBuf),
    #[error("waiting for connections: {0}")]
    Poll(io::Error),
    #[error("creating the vhost-user daemon: {0}")]
    Daemon(String),
}

/// A shutdown request shared by the serve loops and the signal handler
/// thread.
pub struct Shutdown {
    requested: AtomicBool,
    /// Readable once shutdown is requested; never consumed, so every serve
    /// loop polling it wakes up.
    wake: EventFd,
    connections: Mutex<BTreeMap<u64, ShutdownHandle>>,
    next_id: AtomicU64,
}

impl Shutdown {
    pub fn new() -> io::Result<Self> {
        Ok(Shutdown {
            requested: AtomicBool::new(false),
            wake: EventFd::new(EFD_NONBLOCK)?,
            connections: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Ask every serve loop to stop: close live connections, stop
    /// accepting. Safe to call from any thread, any number of times.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Err(e) = self.wake.write(1) {
            error!("cannot wake the serve loops: {e}");
        }
        let conns = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for handle in conns.values() {
            handle.shutdown();
        }
    }

    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    fn register(&self, handle: ShutdownHandle) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, handle.clone());
        // A request that raced with the registration must still close it.
        if self.is_requested() {
            handle.shutdown();
        }
        id
    }

    fn unregister(&self, id: u64) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// One vhost-user-scsi endpoint: a socket and the target behind it.
pub struct ScsiEndpoint {
    /// Where to listen.
    pub socket: PathBuf,
    /// The logical units; shared with (and outliving) every connection.
    pub target: Arc<Target>,
    /// Request queues offered (QEMU's `num_queues` must not exceed it).
    pub request_queues: u16,
    /// Longest adaptive polling window of a request queue
    /// ([`ScsiBackend::with_poll`]).
    pub poll: std::time::Duration,
}

/// Bind `path`, replacing a stale socket file left by a previous run, and
/// make it mode 0600 (only its owner may connect: whoever reaches it
/// controls the devices). A file that is not a socket, or a socket someone
/// still listens on, is left alone.
pub fn bind_private(path: &Path) -> Result<UnixListener, ServeError> {
    remove_stale_socket(path)?;
    let listener = UnixListener::bind(path).map_err(|source| ServeError::Socket {
        path: path.to_owned(),
        source,
    })?;
    make_private(path)?;
    Ok(listener)
}

/// Make the socket at `path` mode 0600.
pub fn make_private(path: &Path) -> Result<(), ServeError> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| {
        ServeError::Socket {
            path: path.to_owned(),
            source,
        }
    })
}

/// Remove a stale socket file at `path` left by a previous run, so it can
/// be bound again. A file that is not a socket, or a socket someone still
/// listens on, is an error and is left alone.
pub fn remove_stale_socket(path: &Path) -> Result<(), ServeError> {
    let sock_err = |source| ServeError::Socket {
        path: path.to_owned(),
        source,
    };
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ServeError::InUse(path.to_owned()));
            }
            info!("removing stale socket {path:?}");
            fs::remove_file(path).map_err(sock_err)?;
        }
        Ok(_) => return Err(ServeError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(sock_err(e)),
    }
    Ok(())
}

/// What an accept loop does after a failed accept (EMFILE, ENFILE, ENOMEM,
/// ...): the listener stays readable, so retrying at once spins a core and
/// floods the log (747,052 lines in 2 s seen on NVMe/TCP). Sleep, doubling
/// from 10 ms to 1 s while accepts keep failing; log the first failure and
/// the recovery, once each.
#[derive(Debug)]
pub struct AcceptBackoff {
    what: &'static str,
    failures: u64,
    delay: std::time::Duration,
}

impl AcceptBackoff {
    const FIRST: std::time::Duration = std::time::Duration::from_millis(10);
    const MAX: std::time::Duration = std::time::Duration::from_secs(1);

    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            failures: 0,
            delay: std::time::Duration::ZERO,
        }
    }

    /// An accept failed with `e`: log (the first of a run) and sleep.
    pub fn failed(&mut self, e: &io::Error) {
        if self.failures == 0 {
            warn!("{}: accept: {e}; backing off", self.what);
        }
        self.failures += 1;
        self.delay = (self.delay * 2).clamp(Self::FIRST, Self::MAX);
        std::thread::sleep(self.delay);
    }

    /// An accept worked: end a run of failures.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            warn!(
                "{}: accepting again after {} failed accepts",
                self.what, self.failures
            );
            self.failures = 0;
            self.delay = std::time::Duration::ZERO;
        }
    }
}

const LISTENER: u64 = 0;
const WAKE: u64 = 1;

/// Serve `endpoint` until `shutdown` is requested: accept a QEMU
/// connection, serve it until it closes, accept the next. Removes the
/// socket file on return.
pub fn serve_scsi(endpoint: &ScsiEndpoint, shutdown: &Shutdown) -> Result<(), ServeError> {
    let std_listener = bind_private(&endpoint.socket)?;
    let result = accept_loop(endpoint, shutdown, std_listener);
    if let Err(e) = fs::remove_file(&endpoint.socket) {
        warn!("cannot remove socket {:?}: {e}", endpoint.socket);
    }
    result
}

fn accept_loop(
    endpoint: &ScsiEndpoint,
    shutdown: &Shutdown,
    std_listener: UnixListener,
) -> Result<(), ServeError> {
    let epoll = Epoll::new().map_err(ServeError::Poll)?;
    for (fd, token) in [
        (std_listener.as_raw_fd(), LISTENER),
        (shutdown.wake.as_raw_fd(), WAKE),
    ] {
        epoll
            .ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )
            .map_err(ServeError::Poll)?;
    }
    // Listener's Drop would unlink the path only if it had bound it.
    let mut listener = Listener::from(std_listener);
    info!(
        "listening on {:?} ({} LUNs, up to {} request queues)",
        endpoint.socket,
        endpoint.target.lun_count(),
        endpoint.request_queues
    );
    let mut events = [EpollEvent::default(); 2];
    let mut connection = 0u64;
    loop {
        if shutdown.is_requested() {
            return Ok(());
        }
        let n = match epoll.wait(-1, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ServeError::Poll(e)),
        };
        if events[..n].iter().any(|e| e.data() == WAKE) || shutdown.is_requested() {
            return Ok(());
        }
        connection += 1;
        serve_connection(endpoint, shutdown, &mut listener, connection)?;
    }
}

/// Accept one connection (the listener is readable) and serve it to its
/// end. Errors of the connection itself are logged; only failures to set
/// up the daemon are returned.
fn serve_connection(
    endpoint: &ScsiEndpoint,
    shutdown: &Shutdown,
    listener: &mut Listener,
    connection: u64,
) -> Result<(), ServeError> {
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let backend = Arc::new(
        ScsiBackend::new(
            endpoint.target.clone(),
            endpoint.request_queues,
            mem.clone(),
        )
        .with_poll(endpoint.poll),
    );
    // On error the workers spawned so far keep running (vhost-user-backend
    // cannot stop them), so their exit fds stay open too.
    let daemon = VhostUserDaemon::new("zonecopy-vhost-scsi".to_owned(), backend.clone(), mem)
        .map_err(|e| ServeError::Daemon(e.to_string()))?;
    run_daemon(endpoint, shutdown, listener, connection, daemon);
    close_exit_fds(&backend);
    Ok(())
}

/// Close the exit event descriptors vhost-user-backend leaked (see
/// [`ScsiBackend::take_exit_fds`]). Called once the daemon is dropped: its
/// worker threads are joined and their epoll instances closed, so nothing
/// refers to these descriptors any more.
fn close_exit_fds(backend: &ScsiBackend) {
    for fd in backend.take_exit_fds() {
        // SAFETY: `fd` is an eventfd this backend created in `exit_event`
        // and vhost-user-backend 0.24 turned into a bare number with
        // `into_raw_fd()` (VringEpollHandler::new), which it never closes.
        // The daemon that held it is dropped and its workers joined, so we
        // are its only owner and no other code will use or close it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// Serve an accepted connection with `daemon` until it ends, then stop the
/// daemon's workers.
fn run_daemon(
    endpoint: &ScsiEndpoint,
    shutdown: &Shutdown,
    listener: &mut Listener,
    connection: u64,
    mut daemon: VhostUserDaemon<Arc<ScsiBackend>>,
) {
    if let Err(e) = daemon.start(listener) {
        // Only the accept itself can fail here; keep listening.
        error!("connection {connection}: cannot start: {e}");
        stop_workers(daemon);
        return;
    }
    info!("connection {connection}: frontend connected");
    let id = daemon.shutdown_handle().map(|h| shutdown.register(h));
    let result = daemon.wait();
    if let Some(id) = id {
        shutdown.unregister(id);
    }
    match result {
        Ok(()) => info!("connection {connection}: closed"),
        Err(DaemonError::HandleRequest(
            VhostUserError::Disconnected | VhostUserError::PartialMessage,
        )) => info!("connection {connection}: frontend disconnected"),
        Err(e @ DaemonError::HandleRequest(VhostUserError::InvalidParam)) => error!(
            "connection {connection}: ended with an error: {e} (a queue index beyond \
             the {} request queues offered? QEMU's num_queues must not exceed --queues)",
            endpoint.request_queues
        ),
        Err(e) => warn!("connection {connection}: ended with an error: {e}"),
    }
    stop_workers(daemon);
}

/// Stop the daemon's vring worker threads and wait for them (dropping the
/// daemon joins them once they got their exit event).
fn stop_workers(daemon: VhostUserDaemon<Arc<ScsiBackend>>) {
    for handler in daemon.get_epoll_handlers() {
        handler.send_exit_event();
    }
    drop(daemon);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_replaces_a_stale_socket_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        // A stale socket: bound, then its listener dropped.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind_private(&path).unwrap();
        // Only its owner may connect.
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Now someone listens: refuse.
        assert!(matches!(bind_private(&path), Err(ServeError::InUse(_))));
        drop(live);

        let file = dir.path().join("not-a-socket");
        fs::write(&file, b"keep me").unwrap();
        assert!(matches!(
            bind_private(&file),
            Err(ServeError::NotASocket(_))
        ));
        assert_eq!(fs::read(&file).unwrap(), b"keep me");
    }

    #[test]
    fn shutdown_stops_an_idle_loop_and_removes_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = ScsiEndpoint {
            socket: dir.path().join("s.sock"),
            target: Arc::new(Target::new(Vec::new())),
            request_queues: 2,
            poll: std::time::Duration::ZERO,
        };
        let shutdown = Shutdown::new().unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| serve_scsi(&endpoint, &shutdown));
            while !endpoint.socket.exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            shutdown.request();
            h.join().unwrap().unwrap();
        });
        assert!(!endpoint.socket.exists());
    }

    #[test]
    fn a_connection_that_closes_does_not_end_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = ScsiEndpoint {
            socket: dir.path().join("s.sock"),
            target: Arc::new(Target::new(Vec::new())),
            request_queues: 1,
            poll: std::time::Duration::ZERO,
        };
        let shutdown = Shutdown::new().unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| serve_scsi(&endpoint, &shutdown));
            while !endpoint.socket.exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            for _ in 0..3 {
                let c = UnixStream::connect(&endpoint.socket).unwrap();
                drop(c);
            }
            // Still accepting.
            let c = UnixStream::connect(&endpoint.socket).unwrap();
            shutdown.request();
            drop(c);
            h.join().unwrap().unwrap();
        });
    }
}
