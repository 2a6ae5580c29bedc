//! The monitor's HTTP endpoint, synchronous (tiny_http, one thread; no
//! async runtime for a scrape every few seconds): `/metrics` (OpenMetrics
//! text), `/-/healthy`, and a short index page, as node_exporter does.

use std::sync::Arc;
use std::thread;

use prometheus_client::registry::Registry;

/// The OpenMetrics content type Prometheus asks for.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The Prometheus text format (0.0.4), for clients that do not ask for
/// OpenMetrics (and for `promtool check metrics`).
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition of `r` in OpenMetrics text.
pub fn exposition(r: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, r);
    out
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter family
/// is named with its `_total` suffix, `# UNIT` and `# EOF` go. The samples
/// are the same.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            if let Some(h) = help.take() {
                out.push_str(h);
                out.push('\n');
            }
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let renamed = if kind == "counter" && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            if let Some(h) = help.take() {
                let text = h
                    .strip_prefix("# HELP ")
                    .and_then(|x| x.split_once(' '))
                    .map_or("", |x| x.1);
                out.push_str(&format!("# HELP {renamed} {text}\n"));
            }
            out.push_str(&format!("# TYPE {renamed} {kind}\n"));
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Serves `registry` on `addr` from a thread; returns the address bound
/// (port 0 picks one), or one sentence saying why it could not listen.
pub fn serve(addr: &str, registry: Arc<Registry>) -> Result<std::net::SocketAddr, String> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}; give another --listen address"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| format!("cannot listen on {addr}: not an IP address"))?;
    thread::spawn(move || {
        for req in server.incoming_requests() {
            let path = req.url().split('?').next().unwrap_or("").to_string();
            let openmetrics = req.headers().iter().any(|h| {
                h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text")
            });
            let (code, body, ctype) = match path.as_str() {
                "/metrics" if openmetrics => (200, exposition(&registry), OPENMETRICS),
                "/metrics" => (200, to_prometheus_text(&exposition(&registry)), TEXT),
                "/-/healthy" | "/-/ready" => (200, "Healthy\n".to_string(), "text/plain"),
                "/" => (
                    200,
                    "<html><head><title>migscope monitor</title></head><body><h1>migscope monitor</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n".to_string(),
                    "text/html",
                ),
                _ => (404, "not found\n".to_string(), "text/plain"),
            };
            let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes())
                .expect("a valid header");
            let _ = req.respond(
                tiny_http::Response::from_string(body)
                    .with_status_code(code)
                    .with_header(header),
            );
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_suffix_in_the_text_format() {
        let om = "# HELP a_packets Packets read.\n# TYPE a_packets counter\na_packets_total 3\n# HELP b Open.\n# TYPE b gauge\n# UNIT b seconds\nb 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_packets_total Packets read.\n# TYPE a_packets_total counter\na_packets_total 3\n# HELP b Open.\n# TYPE b gauge\nb 1\n"
        );
    }
}
