use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use p11agent_client::tls::rustls::{self, pki_types::ServerName, AlertDescription};
use p11agent_client::tls::{self, tokio_rustls, AgentResolver, HttpsUrl};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::error::CliError;

/// Arguments of `p11agent get`.
#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// The URL: https://host[:port][/path].
    url: String,
    /// Trust the server certificates issued by the CA certificates in
    /// this PEM file, instead of the system's roots.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Send this identity (id or unique prefix), whatever the server's CA
    /// list says. By default the agent selects (`p11agent explain` shows
    /// how), and when a person must choose, you are asked on the terminal.
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Print the status line and headers before the body.
    #[arg(long, short = 'i')]
    include: bool,
}

/// How long the TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn run(socket: Option<PathBuf>, args: GetArgs) -> Result<(), CliError> {
    let url = HttpsUrl::parse(&args.url)?;
    // Connecting first gives the usual "agent not running" error (exit 3).
    let socket = super::connect::connect(socket)?.socket().to_owned();

    let roots = roots(args.ca_file.as_deref())?;
    let mut builder = AgentResolver::builder(url.origin()).socket(&socket);
    if let Some(id) = &args.id {
        builder = builder.identity(id.clone());
    }
    if let Some(chooser) = super::chooser::terminal_chooser() {
        builder = builder.chooser(chooser);
    }
    let resolver = Arc::new(builder.build());
    let config = tls::client_config(roots, resolver.clone())?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let raw = runtime
        .block_on(fetch(&url, Arc::new(config)))
        .map_err(|failure| CliError::Get(failure.explain(&url, &resolver)))?;

    let response = parse_response(&raw).map_err(CliError::Get)?;
    let mut out = std::io::stdout().lock();
    if args.include {
        out.write_all(response.head)?;
    }
    out.write_all(&response.body)?;
    out.flush()?;
    if response.status >= 400 {
        eprintln!("p11agent: HTTP status {}", response.status_line);
    }
    Ok(())
}

/// The CAs whose servers are trusted: those in the PEM file `ca_file`,
/// or the system's.
pub(super) fn roots(ca_file: Option<&std::path::Path>) -> Result<rustls::RootCertStore, CliError> {
    let Some(path) = ca_file else {
        return Ok(tls::system_roots()?);
    };
    let certs = tls::load_pem_certificates(path)?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(CliError::Get(format!(
            "{} holds no usable CA certificate",
            path.display()
        )));
    }
    Ok(roots)
}

/// Where a request failed.
pub(super) enum Failure {
    /// Opening the TCP connection.
    Connect(std::io::Error),
    /// The TLS handshake.
    Handshake(std::io::Error),
    /// Afterwards: the request and its answer (or, in a tunnel, the
    /// traffic), where a TLS 1.3 server refuses a client certificate.
    Exchange(std::io::Error),
}

impl Failure {
    /// A message for the user, explaining a refused client certificate.
    pub(super) fn explain(&self, url: &HttpsUrl, resolver: &AgentResolver) -> String {
        let target = format!("{}:{}", url.host_for_header(), url.port);
        let (stage, err) = match self {
            Failure::Connect(e) => return format!("cannot connect to {target}: {e}"),
            Failure::Handshake(e) => ("TLS handshake with", e),
            Failure::Exchange(e) => ("the request to", e),
        };
        let tls_error = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(reason)) = tls_error {
            let hint = if matches!(reason, rustls::CertificateError::UnknownIssuer) {
                "; pass --ca-file with the CA that issued it"
            } else {
                ""
            };
            return format!(
                "{stage} {target} failed: the server's certificate is not trusted ({reason:?}){hint}"
            );
        }
        let selection = resolver.last_resolution();
        let refused = match tls_error {
            Some(rustls::Error::AlertReceived(alert)) => is_client_cert_alert(*alert),
            // A server that hangs up after asking for a certificate.
            _ => {
                selection.as_ref().is_some_and(|s| !s.sent())
                    && matches!(
                        err.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    )
            }
        };
        let mut message = format!("{stage} {target} failed: {err}");
        match (&selection, refused) {
            (Some(selection), true) => {
                message = format!(
                    "{target} refused the client certificate ({err}): p11agent {}.\n\
                     `p11agent explain --origin {}` shows why each identity is or is not \
                     offered; choose one with --id.",
                    selection.describe(),
                    url.origin()
                );
            }
            (Some(selection), false) => {
                message.push_str(&format!(
                    "\n(the server asked for a client certificate; p11agent {})",
                    selection.describe()
                ));
            }
            (None, _) => {}
        }
        message
    }
}

/// Alerts with which servers refuse a client certificate, or the lack
/// of one.
fn is_client_cert_alert(alert: AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::HandshakeFailure
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::DecryptError
    )
}

/// Opens a TCP connection to `host:port`, within [`CONNECT_TIMEOUT`].
pub(super) async fn connect_tcp(host: &str, port: u16) -> Result<tokio::net::TcpStream, Failure> {
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| {
        Failure::Connect(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ))
    })?
    .map_err(Failure::Connect)
}

/// Sends `GET path` over TLS and reads the whole response (the request
/// asks the server to close the connection after it).
async fn fetch(url: &HttpsUrl, config: Arc<rustls::ClientConfig>) -> Result<Vec<u8>, Failure> {
    let tcp = connect_tcp(&url.host, url.port).await?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|e| Failure::Connect(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let mut stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(Failure::Handshake)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: p11agent/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(Failure::Exchange)?;
    stream.flush().await.map_err(Failure::Exchange)?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw).await {
        Ok(_) => {}
        // Servers that close without close_notify: keep what arrived.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(Failure::Exchange(e)),
    }
    Ok(raw)
}

/// An HTTP response, split.
struct HttpResponse<'a> {
    /// Status line and headers, with the blank line that ends them.
    head: &'a [u8],
    status_line: String,
    status: u16,
    body: Vec<u8>,
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse<'_>, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .ok_or_else(|| "the server's answer is not an HTTP response (no header end)".to_owned())?;
    let head = &raw[..end];
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_owned();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
        .ok_or_else(|| format!("not an HTTP status line: {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    let rest = &raw[end..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        match length {
            Some(n) if n < rest.len() => rest[..n].to_vec(),
            _ => rest.to_vec(),
        }
    };
    Ok(HttpResponse {
        head,
        status_line,
        status,
        body,
    })
}

/// Decodes a chunked body (trailers are dropped).
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "malformed chunked body".to_owned();
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or_else(bad)?;
        body.extend_from_slice(chunk);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, extra")
            .expect("response");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .expect("response");
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
        assert_eq!(r.status_line, "HTTP/1.1 404 Not Found");
        let r = parse_response(b"HTTP/1.0 200 ok\r\n\r\n<pre>").expect("response");
        assert_eq!(r.body, b"<pre>");
        assert!(parse_response(b"garbage").is_err());
    }
}
