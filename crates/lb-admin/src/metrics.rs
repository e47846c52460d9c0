//! `/metrics` in the Prometheus text exposition format (version 0.0.4).
//!
//! The registry part is rendered here; per-worker counters come from the runtime's
//! [`MetricsSource`] and are appended verbatim. Label values are escaped as the format requires,
//! because a route prefix may contain `"` or `\`.

use crate::{process, MetricsSource};
use lb_registry::{escape_label, Registry};
use std::fmt::Write;

/// The content type Prometheus expects for the text format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The full `/metrics` body.
pub(crate) fn render(registry: &Registry, extra: &MetricsSource) -> String {
    let generation = registry.generation();
    let targets = registry.targets();
    let mut out = String::with_capacity(512 + 96 * targets.len());
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "# HELP lb_registry_generation Registry generation; it moves on every change.\n\
         # TYPE lb_registry_generation gauge\n\
         lb_registry_generation {generation}\n\
         # HELP lb_targets Registered targets, over all prefixes.\n\
         # TYPE lb_targets gauge\n\
         lb_targets {}\n\
         # HELP lb_target_requests_total Requests sent to a target.\n\
         # TYPE lb_target_requests_total counter\n",
        targets.len()
    );
    for target in &targets {
        out.push_str("lb_target_requests_total{path=\"");
        escape_label(&target.path, &mut out);
        let _ = writeln!(out, "\",target=\"{}\"}} {}", target.addr, target.requests);
    }
    out.push_str(
        "# HELP lb_target_responses_total Responses to requests sent to a target, by status \
         class (lb's own 502/504 for it included).\n\
         # TYPE lb_target_responses_total counter\n",
    );
    for target in &targets {
        for (class, n) in target.responses.iter().enumerate() {
            out.push_str("lb_target_responses_total{path=\"");
            escape_label(&target.path, &mut out);
            let _ = writeln!(
                out,
                "\",target=\"{}\",class=\"{}xx\"}} {n}",
                target.addr,
                class + 1
            );
        }
    }
    out.push_str(
        "# HELP lb_target_healthy 1 when the target is in round robin, 0 while it is down.\n\
         # TYPE lb_target_healthy gauge\n",
    );
    for target in &targets {
        out.push_str("lb_target_healthy{path=\"");
        escape_label(&target.path, &mut out);
        let _ = writeln!(
            out,
            "\",target=\"{}\"}} {}",
            target.addr,
            u8::from(target.healthy)
        );
    }
    process::render(&mut out);
    extra(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn renders_registry_metrics_then_the_extra_source() {
        let registry = Registry::new(1);
        registry
            .register("/a\"b\\", "10.0.0.5:9001".parse().unwrap())
            .unwrap();
        registry
            .register("/v6", "[::1]:80".parse().unwrap())
            .unwrap();
        let extra: MetricsSource = Arc::new(|out: &mut String| out.push_str("lb_extra 1\n"));
        let text = render(&registry, &extra);
        assert!(text.contains("\nlb_registry_generation 2\n"), "{text}");
        assert!(text.contains("\nlb_targets 2\n"), "{text}");
        assert!(text.contains(
            "\nlb_target_requests_total{path=\"/a\\\"b\\\\\",target=\"10.0.0.5:9001\"} 0\n"
        ));
        assert!(text.contains("\nlb_target_requests_total{path=\"/v6\",target=\"[::1]:80\"} 0\n"));
        assert!(text.contains("\nlb_target_healthy{path=\"/v6\",target=\"[::1]:80\"} 1\n"));
        assert!(text.contains(
            "\nlb_target_responses_total{path=\"/v6\",target=\"[::1]:80\",class=\"5xx\"} 0\n"
        ));
        registry.mark_down("[::1]:80".parse().unwrap());
        let text = render(&registry, &extra);
        assert!(text.contains("\nlb_target_healthy{path=\"/v6\",target=\"[::1]:80\"} 0\n"));
        assert!(text.contains("\nlb_build_info{version=\""), "{text}");
        assert!(text.ends_with("\nlb_extra 1\n"), "{text}");
    }
}
