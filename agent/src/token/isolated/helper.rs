//! The module helper process (`p11agent module-helper PATH`, started by
//! the agent, never by a person): it loads one PKCS#11 module and does
//! what the agent asks of it with the same token layer the agent uses
//! in-process, so an isolated module behaves exactly as a loaded one.
//!
//! Its standard input is the control socket: it first writes whether
//! the module loaded, then receives channels (one end of a socket pair
//! each, passed with `SCM_RIGHTS`) and serves each on its own thread,
//! one request at a time. End of input on the control socket (the agent
//! stopped or died) ends the helper.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use secrecy::SecretString;

use super::wire::{read_frame, with_causes, write_frame, Reply, Request, WireTokenError};
use crate::pin::{PinError, PinKind, PinRequest, PinSource};
use crate::token::{Loaded, Module, TokenError, Tokens};

/// Why the helper stopped before serving.
#[derive(Debug, thiserror::Error)]
#[error("module helper: {0}")]
pub struct HelperError(String);

/// Runs the helper for the module at `path` until the agent closes the
/// control socket (standard input).
pub(crate) fn run(path: &Path) -> Result<(), HelperError> {
    let control: UnixStream = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(UnixStream::from)
        .map_err(|e| HelperError(format!("standard input: {e}")))?;
    let module = Module::load(path);
    let hello: Result<(), String> = match &module {
        Ok(_) => Ok(()),
        Err(e) => Err(with_causes(e)),
    };
    write_frame(&mut &control, &hello)
        .map_err(|e| HelperError(format!("cannot answer the agent: {e}")))?;
    let Ok(module) = module else {
        return Ok(());
    };
    let tokens = Arc::new(Tokens::new(
        vec![Loaded::Local(module)],
        Arc::new(AskTheAgent),
    ));
    loop {
        match receive_channel(&control) {
            Ok(Some(channel)) => {
                let tokens = Arc::clone(&tokens);
                let spawned = std::thread::Builder::new()
                    .name("channel".into())
                    .spawn(move || serve(&tokens, channel));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start a thread for a channel");
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "control socket failed");
                break;
            }
        }
    }
    // Sessions close before the module is finalised (`Tokens` drops its
    // token states first); a channel thread still in a call keeps the
    // module alive until the process exits.
    drop(tokens);
    Ok(())
}

/// The next channel the agent passes, or `None` at end of input.
fn receive_channel(control: &UnixStream) -> io::Result<Option<UnixStream>> {
    loop {
        let mut byte = [0u8; 1];
        let mut iov = [io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let message = match recvmsg::<()>(
            control.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(message) => message,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if message.bytes == 0 {
            return Ok(None);
        }
        let mut received = None;
        for cmsg in message.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    received = Some(UnixStream::from(owned(fd)));
                }
            }
        }
        if let Some(channel) = received {
            return Ok(Some(channel));
        }
    }
}

/// Takes ownership of a descriptor the kernel just passed to this
/// process with `SCM_RIGHTS`.
#[allow(unsafe_code)]
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was installed in this process by `recvmsg` for this
    // message and nothing else refers to it: taking ownership here is
    // the only way it is ever closed.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

thread_local! {
    /// The channel this thread serves, on which a PIN is asked for.
    static CHANNEL: RefCell<Option<UnixStream>> = const { RefCell::new(None) };
}

/// Serves one channel until the agent closes it.
fn serve(tokens: &Tokens, mut channel: UnixStream) {
    CHANNEL.set(channel.try_clone().ok());
    loop {
        let request: Request = match read_frame(&mut channel) {
            Ok(request) => request,
            Err(e) => {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::warn!(error = %e, "bad request from the agent");
                }
                return;
            }
        };
        let reply = std::panic::catch_unwind(AssertUnwindSafe(|| answer(tokens, request)))
            .unwrap_or_else(|_| {
                Reply::TokenFailed(WireTokenError::Other(
                    "the module helper failed on this request".into(),
                ))
            });
        if write_frame(&mut channel, &reply).is_err() {
            return;
        }
    }
}

/// Does what `request` asks of the helper's one module.
fn answer(tokens: &Tokens, request: Request) -> Reply {
    match request {
        Request::Scan => tokens
            .with_module(0, Module::scan)
            .map_or_else(token_failed, Reply::Scanned),
        Request::PresentTokens => tokens
            .with_module(0, Module::present_tokens)
            .map_or_else(token_failed, Reply::Present),
        Request::ObjectFingerprint(slot) => tokens
            .with_module(0, |module| module.object_fingerprint(slot))
            .map_or_else(token_failed, Reply::Fingerprint),
        Request::ScanSlot(slot) => tokens
            .with_module(0, |module| module.scan_slot(slot))
            .map_or_else(token_failed, Reply::ScannedSlot),
        Request::Reinitialize => tokens
            .reinitialize(0)
            .map_or_else(token_failed, |()| Reply::Done),
        Request::Sign {
            key,
            scheme,
            message,
        } => tokens
            .sign(&key, scheme, &message)
            .map_or_else(Reply::SignFailed, Reply::Signature),
        Request::SignDigest {
            key,
            mechanism,
            hash,
            digest,
        } => tokens
            .sign_digest(&key, mechanism, hash, &digest)
            .map_or_else(Reply::SignFailed, Reply::Signature),
        Request::Login { token, pin } => tokens
            .login(&token, pin.map(|pin| SecretString::from(pin.as_str())))
            .map_or_else(Reply::SignFailed, |()| Reply::Done),
        Request::Logout(token) => tokens
            .logout(&token)
            .map_or_else(Reply::SignFailed, Reply::LoggedOut),
        Request::Forget(token) => {
            tokens.forget(&token);
            Reply::Done
        }
        Request::PinAnswer(_) => {
            Reply::TokenFailed(WireTokenError::Other("a PIN nobody asked for".into()))
        }
    }
}

fn token_failed(error: TokenError) -> Reply {
    Reply::TokenFailed(match error {
        TokenError::TokenNotInitialized { slot, .. } => {
            WireTokenError::TokenNotInitialized { slot }
        }
        error => WireTokenError::Other(with_causes(&error)),
    })
}

/// The helper's PIN source: asks the agent, on the channel of the
/// request that needs the PIN.
#[derive(Debug)]
struct AskTheAgent;

impl PinSource for AskTheAgent {
    fn pin(&self, request: &PinRequest<'_>) -> Result<SecretString, PinError> {
        CHANNEL.with_borrow_mut(|channel| {
            let channel = channel
                .as_mut()
                .ok_or_else(|| PinError::Failed("no agent to ask".into()))?;
            let question = Reply::NeedPin {
                token: request.token.clone(),
                context_specific: request.kind == PinKind::ContextSpecific,
                warning: request.warning.clone(),
            };
            let lost = |e: io::Error| PinError::Failed(format!("the agent did not answer: {e}"));
            write_frame(channel, &question).map_err(lost)?;
            match read_frame(channel).map_err(lost)? {
                Request::PinAnswer(Ok(pin)) => Ok(SecretString::from(pin.as_str())),
                Request::PinAnswer(Err(e)) => Err(e.into()),
                _ => Err(PinError::Failed("the agent answered something else".into())),
            }
        })
    }
}
