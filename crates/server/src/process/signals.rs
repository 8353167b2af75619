//! The signals `sprocketd` acts on: SIGTERM and SIGINT stop at once,
//! SIGUSR1 stops gracefully, SIGHUP reopens the log file and the job log
//! and reloads the TLS certificate and key, the ACL file and the policy
//! file.

use sprocket_engine::ShutdownRequest;
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::acl::AclReloader;
use crate::ended_jobs::Reopener;
use crate::logging::LogTarget;
use crate::policy_file::PolicyReloader;
use crate::server::Stopper;
use crate::tls::CertificateReloader;

/// The signal handlers, installed at the very start of start-up: a signal
/// that arrives while the store replays or the listeners open (a log
/// rotation's SIGHUP, an early SIGTERM) is kept and handled once the
/// server runs, instead of killing the process with the default action.
pub struct Signals {
    term: Signal,
    int: Signal,
    usr1: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers (inside the runtime); `None`, logged, when
    /// the system refuses.
    pub fn install() -> Option<Signals> {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::user_defined1()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(usr1), Ok(hup)) => Some(Signals { term, int, usr1, hup }),
            _ => {
                tracing::error!("cannot install signal handlers");
                None
            }
        }
    }
}

/// Acts on the signals caught for as long as the process runs.
pub async fn handle(
    installed: Option<Signals>,
    stopper: Stopper,
    log: LogTarget,
    tls: CertificateReloader,
    job_log: Option<Reopener>,
    acl: AclReloader,
    policy: PolicyReloader,
) {
    let Some(Signals { mut term, mut int, mut usr1, mut hup }) = installed else {
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); stopper.stop(ShutdownRequest::Immediate); }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); stopper.stop(ShutdownRequest::Immediate); }
            _ = usr1.recv() => { tracing::info!("SIGUSR1: graceful shutdown"); stopper.stop(ShutdownRequest::Graceful); }
            _ = hup.recv() => {
                log.reopen();
                tls.reload();
                acl.reload();
                policy.reload();
                if let Some(job_log) = &job_log {
                    job_log.reopen();
                }
            }
        }
    }
}
