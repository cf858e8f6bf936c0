//! `p11agent tunnel`: a local port whose connections are forwarded to a
//! TLS server over mutual TLS, with the client certificate chosen and its
//! signature made by the agent (as `get` does), so that a program that
//! knows neither PKCS#11 nor TLS client certificates (curl over plain
//! HTTP, psql, an MQTT client, a script) uses the key on the card.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use p11agent_client::tls::rustls::{self, pki_types::ServerName};
use p11agent_client::tls::{self, tokio_rustls, AgentResolver, HttpsUrl};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::CliError;
use super::get::{connect_tcp, roots, Failure};

/// Arguments of `p11agent tunnel`.
#[derive(Debug, clap::Args)]
pub(crate) struct TunnelArgs {
    /// Where to listen: ADDR:PORT (e.g. 127.0.0.1:8080), PORT alone (on
    /// 127.0.0.1), or unix:PATH. Any program that can reach it uses your
    /// certificate: listen on another address than 127.0.0.1 only with
    /// care.
    #[arg(long, value_name = "ADDR:PORT|PORT|unix:PATH")]
    listen: String,
    /// The TLS server to forward to: HOST:PORT.
    #[arg(value_name = "HOST:PORT")]
    target: String,
    /// The server name sent (SNI) and checked in the server's certificate,
    /// and the origin the agent's certificate policy sees [default: HOST].
    #[arg(long, value_name = "NAME")]
    servername: Option<String>,
    /// Trust the server certificates issued by the CA certificates in
    /// this PEM file, instead of the system's roots.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Send this identity (id or unique prefix), whatever the server's CA
    /// list says. By default the agent selects, as for `get`; nobody is
    /// asked, so where a person would have to choose, no certificate is
    /// sent.
    #[arg(long, value_name = "ID")]
    id: Option<String>,
}

/// Where the tunnel listens.
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Listen {
    fn parse(text: &str) -> Result<Listen, CliError> {
        if let Some(path) = text.strip_prefix("unix:") {
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        if let Ok(port) = text.parse::<u16>() {
            return Ok(Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        text.parse().map(Listen::Tcp).map_err(|_| {
            CliError::Usage(format!(
                "--listen {text}: give ADDR:PORT (127.0.0.1:8080), a port, or unix:PATH"
            ))
        })
    }
}

pub(super) fn run(socket: Option<PathBuf>, args: TunnelArgs) -> Result<(), CliError> {
    let listen = Listen::parse(&args.listen)?;
    let (host, port) = args
        .target
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.trim_matches(['[', ']']), port.parse::<u16>().ok()?)))
        .ok_or_else(|| CliError::Usage(format!("{}: give the server as HOST:PORT", args.target)))?;
    let name = args.servername.clone().unwrap_or_else(|| host.to_owned());
    let url = HttpsUrl::parse(&format!("https://{name}:{port}/"))?;
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| CliError::Usage(format!("--servername {name}: {e}")))?;
    // Connecting first gives the usual "agent not running" error (exit 3).
    let socket = super::connect::connect(socket)?.socket().to_owned();
    let mut builder = AgentResolver::builder(url.origin()).socket(&socket);
    if let Some(id) = &args.id {
        builder = builder.identity(id.clone());
    }
    let resolver = Arc::new(builder.build());
    let config = Arc::new(tls::client_config(
        roots(args.ca_file.as_deref())?,
        resolver.clone(),
    )?);
    let tunnel = Arc::new(Tunnel {
        target: (host.to_owned(), port),
        server_name,
        url,
        config,
        resolver,
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async move {
        match listen {
            Listen::Tcp(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| CliError::Usage(format!("cannot listen on {addr}: {e}")))?;
                eprintln!(
                    "p11agent tunnel: {} -> {}:{} over mutual TLS",
                    listener.local_addr().unwrap_or(addr),
                    tunnel.target.0,
                    tunnel.target.1
                );
                loop {
                    let (local, peer) = listener.accept().await.map_err(accept_failed)?;
                    let tunnel = Arc::clone(&tunnel);
                    tokio::spawn(async move { tunnel.forward(local, &peer.to_string()).await });
                }
            }
            Listen::Unix(path) => {
                let listener = tokio::net::UnixListener::bind(&path).map_err(|e| {
                    CliError::Usage(format!("cannot listen on {}: {e}", path.display()))
                })?;
                eprintln!(
                    "p11agent tunnel: {} -> {}:{} over mutual TLS",
                    path.display(),
                    tunnel.target.0,
                    tunnel.target.1
                );
                loop {
                    let (local, _) = listener.accept().await.map_err(accept_failed)?;
                    let tunnel = Arc::clone(&tunnel);
                    tokio::spawn(async move { tunnel.forward(local, "a local client").await });
                }
            }
        }
    })
}

fn accept_failed(error: std::io::Error) -> CliError {
    CliError::Get(format!("the tunnel stopped accepting connections: {error}"))
}

/// What every forwarded connection shares.
struct Tunnel {
    target: (String, u16),
    server_name: ServerName<'static>,
    url: HttpsUrl,
    config: Arc<rustls::ClientConfig>,
    resolver: Arc<AgentResolver>,
}

impl Tunnel {
    /// Forwards `local` to the server until either side closes; a
    /// failure is reported on stderr, naming `peer`, and closes `local`.
    async fn forward<S: AsyncRead + AsyncWrite + Unpin>(&self, mut local: S, peer: &str) {
        if let Err(failure) = self.try_forward(&mut local).await {
            eprintln!(
                "p11agent tunnel: connection from {peer}: {}",
                failure.explain(&self.url, &self.resolver)
            );
        }
    }

    async fn try_forward<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        local: &mut S,
    ) -> Result<(), Failure> {
        let tcp = connect_tcp(&self.target.0, self.target.1).await?;
        let mut remote = tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(Failure::Handshake)?;
        match tokio::io::copy_bidirectional(local, &mut remote).await {
            Ok(_) => Ok(()),
            // A server that closes without close_notify after answering.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(Failure::Exchange(e)),
        }
    }
}
