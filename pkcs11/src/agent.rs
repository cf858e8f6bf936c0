//! The module's connections to the agent: one that watches its events,
//! and a pool of request connections (one per thread signing at once).
//! All of it blocks on the caller's thread; the module starts none.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::task::Poll;
use std::time::{Duration, Instant};

use p11agent_client::proto::{EventKind, Filter, Identity, TokenSummary};
use p11agent_client::{Client, ClientError, EventStream, ShownIdentity};

/// How often the module tries to reach an agent that is not there.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Request connections kept for reuse; more threads than this at once
/// connect, and their connections are closed afterwards.
const POOL_SIZE: usize = 8;

/// What the agent's events since the last look say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum News {
    /// Nothing that changes what the module shows.
    Quiet,
    /// Tokens or identities changed, or the module just (re)connected:
    /// list again.
    Changed,
    /// The agent went away.
    Gone,
}

/// What the agent holds, as the module shows it.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) tokens: Vec<TokenSummary>,
    pub(crate) identities: Vec<Identity>,
    /// Certificates fetched for this listing, with the CA certificates
    /// above each, by identity id.
    pub(crate) certificates: HashMap<String, ShownIdentity>,
}

#[derive(Debug)]
pub(crate) struct Agent {
    socket: PathBuf,
    events: Option<EventStream>,
    pool: Vec<Client>,
    last_attempt: Option<Instant>,
}

impl Agent {
    pub(crate) fn new(socket: PathBuf) -> Self {
        Agent {
            socket,
            events: None,
            pool: Vec::new(),
            last_attempt: None,
        }
    }

    /// Takes the events that have arrived, without waiting; connects
    /// when not connected (at most once per [`RETRY_INTERVAL`]).
    pub(crate) fn poll(&mut self) -> News {
        let Some(events) = &mut self.events else {
            return self.connect();
        };
        let mut news = News::Quiet;
        loop {
            match events.try_next() {
                Poll::Pending => return news,
                Poll::Ready(Some(Ok(event))) if !changes_listing(event.event) => {}
                // An event that changes the listing, or one that could not
                // be read: list again to be sure.
                Poll::Ready(Some(_)) => news = News::Changed,
                Poll::Ready(None) => {
                    self.disconnect();
                    return News::Gone;
                }
            }
        }
    }

    fn connect(&mut self) -> News {
        let now = Instant::now();
        if self
            .last_attempt
            .is_some_and(|last| now.duration_since(last) < RETRY_INTERVAL)
        {
            return News::Quiet;
        }
        self.last_attempt = Some(now);
        match Client::connect(&self.socket).and_then(Client::watch) {
            Ok(events) => {
                self.events = Some(events);
                News::Changed
            }
            Err(_) => News::Quiet,
        }
    }

    /// Drops every connection (the agent went away, or this is a forked
    /// child whose connections are its parent's); the next poll connects.
    pub(crate) fn disconnect(&mut self) {
        self.events = None;
        self.pool.clear();
        self.last_attempt = Some(Instant::now());
    }

    /// Forgets the inherited connections of a forked child without a
    /// word on them (closing its copies leaves the parent's open), and
    /// connects again at the next poll.
    pub(crate) fn after_fork(&mut self) {
        self.events = None;
        self.pool.clear();
        self.last_attempt = None;
    }

    /// A copy of the event connection's socket, to wait on without
    /// holding the module's lock.
    pub(crate) fn events_fd(&self) -> Option<OwnedFd> {
        self.events.as_ref()?.as_fd().try_clone_to_owned().ok()
    }

    /// Lists tokens and identities, fetching the certificate of each
    /// identity for which `needs_certificate` says so.
    pub(crate) fn listing(
        &mut self,
        needs_certificate: impl Fn(&Identity) -> bool,
    ) -> Result<Listing, ClientError> {
        let mut client = match self.pool.pop() {
            Some(client) => client,
            None => Client::connect(&self.socket)?,
        };
        let listing = list(&mut client, needs_certificate)?;
        self.give_back(client);
        Ok(listing)
    }

    /// A request connection from the pool; `None` when the caller must
    /// connect (outside the module's lock).
    pub(crate) fn take_client(&mut self) -> Option<Client> {
        self.pool.pop()
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.socket.clone()
    }

    pub(crate) fn give_back(&mut self, client: Client) {
        if self.pool.len() < POOL_SIZE {
            self.pool.push(client);
        }
    }
}

fn list(
    client: &mut Client,
    needs_certificate: impl Fn(&Identity) -> bool,
) -> Result<Listing, ClientError> {
    let tokens = client.tokens()?;
    let identities = client.list(&Filter::default())?;
    let mut certificates = HashMap::new();
    for identity in identities.iter().filter(|i| needs_certificate(i)) {
        let shown = client.show(&identity.id)?;
        certificates.insert(identity.id.clone(), shown);
    }
    Ok(Listing {
        tokens,
        identities,
        certificates,
    })
}

/// Whether an event of `kind` may change the tokens or identities. Kinds
/// a newer agent sends that this module does not know are taken to.
fn changes_listing(kind: EventKind) -> bool {
    !matches!(kind, EventKind::Login | EventKind::Logout)
}
