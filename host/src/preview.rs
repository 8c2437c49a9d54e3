//! `lws preview`: serves the browser preview page on 127.0.0.1 from files embedded in the binary.
//!
//! The page (`preview/`), the npm loader (`wasm/js/index.js`), the example manifests and the very
//! `lws.wasm` this binary embeds are compiled in, laid out as in the repository (`/preview/`,
//! `/wasm/js/`, `/examples/`), so the page's relative imports work the same from a checkout.
//! Every decision the page shows is made by lws.wasm in the browser; this is only a file server:
//! std's `TcpListener`, one thread per connection, `GET` and `HEAD` only, `Connection: close`.

use crate::guest::EMBEDDED_MODULE;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Where the page lives on the server.
pub const PAGE_PATH: &str = "/preview/";

/// One embedded file: its URL path, Content-Type and bytes.
struct File {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const YAML: &str = "application/yaml; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const WASM: &str = "application/wasm";

macro_rules! repo_file {
    ($path:literal, $content_type:expr) => {
        File {
            path: concat!("/", $path),
            content_type: $content_type,
            body: include_bytes!(concat!("../../", $path)),
        }
    };
}

/// Everything the page loads. The example list matches `EXAMPLES` in `preview/app.js`.
const FILES: &[File] = &[
    repo_file!("preview/index.html", HTML),
    repo_file!("preview/app.js", JS),
    repo_file!("preview/source.js", JS),
    repo_file!("preview/style.css", CSS),
    repo_file!("preview/vendor/yaml.js", JS),
    repo_file!("preview/vendor/yaml.LICENSE", TEXT),
    repo_file!("wasm/js/index.js", JS),
    repo_file!("wasm/js/index.d.ts", TEXT),
    repo_file!("examples/lws.yaml", YAML),
    repo_file!("examples/lws-exclusive-placement.yaml", YAML),
    repo_file!("examples/lws-subgroup.yaml", YAML),
    repo_file!("examples/lws-tpu.yaml", YAML),
    repo_file!("examples/lws-multi-template.yaml", YAML),
    repo_file!("examples/lws-unique-per-replica.yaml", YAML),
    repo_file!("examples/lws-rollout-strategy.yaml", YAML),
    repo_file!("examples/lws-restart-policy.yaml", YAML),
    repo_file!("examples/lws-startup-policy.yaml", YAML),
    repo_file!("examples/lws-volume-claim-templates.yaml", YAML),
    repo_file!("examples/lws-pod-termination-policy.yaml", YAML),
    repo_file!("examples/lws-volcano.yaml", YAML),
];

/// The page may load only what this server serves: no fonts, CDNs or beacons elsewhere.
/// `wasm-unsafe-eval` lets it compile lws.wasm; `blob:` is the YAML download.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An answer to one request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// `Location` for a redirect.
    pub location: Option<&'static str>,
}

impl Response {
    fn error(status: u16, message: &'static str) -> Self {
        Response {
            status,
            content_type: TEXT,
            body: message.as_bytes(),
            location: None,
        }
    }
}

/// Routes a request line's method and target (query and fragment ignored) to its answer.
pub fn respond(method: &str, target: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::error(405, "only GET and HEAD\n");
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    match path {
        "/" | "/preview" => {
            return Response {
                status: 308,
                location: Some(PAGE_PATH),
                ..Response::error(308, "see /preview/\n")
            }
        }
        "/preview/" => return file("/preview/index.html"),
        "/wasm/js/lws.wasm" => {
            return Response {
                status: 200,
                content_type: WASM,
                body: EMBEDDED_MODULE,
                location: None,
            }
        }
        _ => {}
    }
    file(path)
}

fn file(path: &str) -> Response {
    match FILES.iter().find(|f| f.path == path) {
        Some(f) => Response {
            status: 200,
            content_type: f.content_type,
            body: f.body,
            location: None,
        },
        None => Response::error(404, "not found\n"),
    }
}

/// Binds 127.0.0.1:`port` (0 picks a free port).
pub fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// The page's URL on a bound listener.
pub fn page_url(listener: &TcpListener) -> io::Result<String> {
    Ok(format!("http://{}{PAGE_PATH}", listener.local_addr()?))
}

/// Serves until the process ends; a failed connection only ends its own thread.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        std::thread::spawn(move || {
            // A client that hangs up mid-request is no concern of the server's.
            let _ = handle(stream);
        });
    }
    Ok(())
}

/// The longest request head read; the page's requests are a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

fn handle(stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut host = None;
    let mut head = request_line.len();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        head += line.len();
        if head > MAX_HEAD {
            return write(
                stream,
                "GET",
                Response::error(431, "request head too large\n"),
            );
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("host") {
                host = Some(value.trim().to_string());
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return write(stream, "GET", Response::error(400, "bad request\n"));
    };
    // Only a page opened as 127.0.0.1 or localhost gets answers: a foreign name resolving to
    // this address (DNS rebinding) does not.
    if !host.as_deref().is_some_and(is_local_host) {
        return write(
            stream,
            method,
            Response::error(421, "use http://127.0.0.1\n"),
        );
    }
    let method = method.to_string();
    let response = respond(&method, target);
    write(stream, &method, response)
}

fn is_local_host(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    matches!(name, "127.0.0.1" | "localhost")
}

fn write(mut stream: TcpStream, method: &str, response: Response) -> io::Result<()> {
    let reason = match response.status {
        200 => "OK",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        421 => "Misdirected Request",
        _ => "Request Header Fields Too Large",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\nContent-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n\
         Connection: close\r\n",
        response.status,
        response.content_type,
        response.body.len(),
    );
    if let Some(location) = response.location {
        head.push_str(&format!("Location: {location}\r\n"));
    }
    if response.status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(response.body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn page_loader_module_and_examples_are_served_with_their_types() {
        let cases = [
            ("/preview/", HTML),
            ("/preview/app.js", JS),
            ("/preview/vendor/yaml.js", JS),
            ("/preview/style.css", CSS),
            ("/wasm/js/index.js", JS),
            ("/wasm/js/lws.wasm", WASM),
            ("/examples/lws.yaml", YAML),
        ];
        for (path, content_type) in cases {
            let response = respond("GET", path);
            assert_eq!(
                (response.status, response.content_type),
                (200, content_type),
                "{path}"
            );
            assert!(!response.body.is_empty(), "{path}");
        }
        assert_eq!(respond("GET", "/wasm/js/lws.wasm").body, EMBEDDED_MODULE);
    }

    #[test]
    fn root_redirects_unknown_is_404_and_only_get_and_head() {
        let root = respond("GET", "/?x=1");
        assert_eq!((root.status, root.location), (308, Some(PAGE_PATH)));
        assert_eq!(respond("GET", "/../Cargo.toml").status, 404);
        assert_eq!(respond("GET", "/preview/app.js?v=2").status, 200);
        assert_eq!(respond("POST", "/preview/").status, 405);
    }

    #[test]
    fn serves_over_tcp_and_refuses_foreign_hosts() {
        let listener = bind(0).unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || serve(listener));
        let get = |host: &str| {
            let mut stream = TcpStream::connect(address).unwrap();
            write!(
                stream,
                "GET /wasm/js/lws.wasm HTTP/1.1\r\nHost: {host}\r\n\r\n"
            )
            .unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).unwrap();
            answer
        };
        let answer = get(&address.to_string());
        let text = String::from_utf8_lossy(&answer[..200]);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: application/wasm\r\n"),
            "{text}"
        );
        assert!(answer.ends_with(&EMBEDDED_MODULE[EMBEDDED_MODULE.len() - 64..]));
        let foreign = get("evil.example:80");
        assert!(String::from_utf8_lossy(&foreign).starts_with("HTTP/1.1 421 "));
    }
}
