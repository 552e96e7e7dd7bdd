//! Prometheus metrics (`GET /metrics`, text format 0.0.4). Owns the process-wide counters,
//! gauges and histograms and their rendering. Labels are route patterns, statuses and model
//! names only: no per-key labels and nothing secret (API.md §8). Callers record; nothing here
//! touches the database.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Seconds; spans a cached key check (µs) to a long upstream call (minutes).
const BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct State {
    /// (route pattern, method label, status): every part from a fixed set (issue 11: no
    /// series per invented path or method), so the map stays small whatever clients send.
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    upstream_latency: BTreeMap<String, Histogram>,
    /// Per model: (completion, prompt) tokens (rendered in that order, the labels' order).
    tokens: BTreeMap<String, (u64, u64)>,
    spend: BTreeMap<String, f64>,
    key_check: Histogram,
    pool_wait: Histogram,
}

pub struct Metrics {
    state: Mutex<State>,
    active_streams: AtomicI64,
    pool_waits: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    state: Mutex::new(State {
        requests: BTreeMap::new(),
        upstream_latency: BTreeMap::new(),
        tokens: BTreeMap::new(),
        spend: BTreeMap::new(),
        key_check: Histogram {
            counts: Vec::new(),
            sum: 0.0,
            count: 0,
        },
        pool_wait: Histogram {
            counts: Vec::new(),
            sum: 0.0,
            count: 0,
        },
    }),
    active_streams: AtomicI64::new(0),
    pool_waits: AtomicU64::new(0),
};

/// The method as a label: the standard methods by name, anything else `"other"`.
pub fn method_label(m: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(m))
        .copied()
        .unwrap_or("other")
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }

    /// One finished request, by route pattern (never the raw path: `"unmatched"` for an
    /// unknown one), method (`method_label`) and status.
    pub fn request(&self, route: &'static str, method: &str, status: u16) {
        let method = method_label(method);
        self.with(|s| *s.requests.entry((route, method, status)).or_insert(0) += 1);
    }

    pub fn key_check(&self, d: Duration) {
        self.with(|s| s.key_check.observe(d.as_secs_f64()));
    }

    /// A wait for a free database connection (only recorded when the pool was empty).
    pub fn pool_wait(&self, d: Duration) {
        self.pool_waits.fetch_add(1, Ordering::Relaxed);
        self.with(|s| s.pool_wait.observe(d.as_secs_f64()));
    }

    /// Runs on every forwarded call: the model's name is copied only the first time.
    pub fn upstream(&self, model: &str, d: Duration) {
        self.with(|s| {
            bump(&mut s.upstream_latency, model, |h| {
                h.observe(d.as_secs_f64())
            })
        });
    }

    /// Runs on every settled call: the model's name is copied only the first time.
    pub fn usage(&self, model: &str, prompt: u64, completion: u64, spend: f64) {
        self.with(|s| {
            bump(&mut s.tokens, model, |t| {
                t.0 += completion;
                t.1 += prompt;
            });
            bump(&mut s.spend, model, |v| *v += spend);
        });
    }

    pub fn stream_started(&self) {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_ended(&self) {
        self.active_streams.fetch_sub(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition. `extra` gauges come from the caller (connections, ...).
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        self.with(|s| {
            let _ = writeln!(out, "# HELP litegate_requests_total HTTP requests by route pattern, method and status.");
            let _ = writeln!(out, "# TYPE litegate_requests_total counter");
            for ((route, method, status), n) in &s.requests {
                let _ = writeln!(
                    out,
                    "litegate_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                    escape(route),
                    escape(method)
                );
            }
            let _ = writeln!(out, "# HELP litegate_upstream_latency_seconds Time from forwarding a call to its upstream answer (headers for streams), by model.");
            let _ = writeln!(out, "# TYPE litegate_upstream_latency_seconds histogram");
            for (model, h) in &s.upstream_latency {
                hist(&mut out, "litegate_upstream_latency_seconds", &format!("model=\"{}\"", escape(model)), h);
            }
            let _ = writeln!(out, "# HELP litegate_tokens_total Tokens billed, by model and type.");
            let _ = writeln!(out, "# TYPE litegate_tokens_total counter");
            for (model, (completion, prompt)) in &s.tokens {
                for (kind, n) in [("completion", completion), ("prompt", prompt)] {
                    let _ = writeln!(
                        out,
                        "litegate_tokens_total{{model=\"{}\",type=\"{kind}\"}} {n}",
                        escape(model)
                    );
                }
            }
            let _ = writeln!(out, "# HELP litegate_spend_total Spend recorded, in the configured cost unit, by model.");
            let _ = writeln!(out, "# TYPE litegate_spend_total counter");
            for (model, v) in &s.spend {
                let _ = writeln!(out, "litegate_spend_total{{model=\"{}\"}} {v}", escape(model));
            }
            let _ = writeln!(out, "# HELP litegate_key_check_seconds Time to authenticate a key (the key-check statement and decode).");
            let _ = writeln!(out, "# TYPE litegate_key_check_seconds histogram");
            hist(&mut out, "litegate_key_check_seconds", "", &s.key_check);
            let _ = writeln!(out, "# HELP litegate_db_pool_wait_seconds Time requests waited for a database connection, when they had to.");
            let _ = writeln!(out, "# TYPE litegate_db_pool_wait_seconds histogram");
            hist(&mut out, "litegate_db_pool_wait_seconds", "", &s.pool_wait);
        });
        let _ = writeln!(out, "# HELP litegate_db_pool_waits_total Times a request found no free database connection.");
        let _ = writeln!(out, "# TYPE litegate_db_pool_waits_total counter");
        let _ = writeln!(
            out,
            "litegate_db_pool_waits_total {}",
            self.pool_waits.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP litegate_active_streams Streaming responses in progress."
        );
        let _ = writeln!(out, "# TYPE litegate_active_streams gauge");
        let _ = writeln!(
            out,
            "litegate_active_streams {}",
            self.active_streams.load(Ordering::Relaxed)
        );
        for (name, help, v) in extra {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {v}");
        }
        out
    }
}

/// Applies `f` to `map`'s value for `key`, inserted as the default when missing
/// (`BTreeMap::entry` needs an owned key: a `String` per call, though the key is there from
/// the second call on).
fn bump<V: Default>(map: &mut BTreeMap<String, V>, key: &str, f: impl FnOnce(&mut V)) {
    match map.get_mut(key) {
        Some(v) => f(v),
        None => f(map.entry(key.to_string()).or_default()),
    }
}

fn hist(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    let counts = if h.counts.is_empty() {
        vec![0; BUCKETS.len()]
    } else {
        h.counts.clone()
    };
    for (b, c) in BUCKETS.iter().zip(&counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", h.sum);
    let _ = writeln!(out, "{name}_count{braces} {}", h.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.000_02);
        h.observe(0.2);
        h.observe(1000.0);
        let mut s = String::new();
        hist(&mut s, "x", "", &h);
        assert!(s.contains("x_bucket{le=\"0.000025\"} 1"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.25\"} 2"), "{s}");
        assert!(s.contains("x_bucket{le=\"300\"} 2"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3"), "{s}");
        assert!(s.contains("x_count 3"), "{s}");
    }

    #[test]
    fn method_labels_come_from_a_fixed_set() {
        assert_eq!(method_label("get"), "GET");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("X-RANDOM-1234"), "other");
    }

    #[test]
    fn tokens_and_spend_render_per_model_in_label_order() {
        let m = Metrics {
            state: Mutex::new(State::default()),
            active_streams: AtomicI64::new(0),
            pool_waits: AtomicU64::new(0),
        };
        m.usage("b", 3, 4, 0.5);
        m.usage("a", 1, 2, 0.25);
        m.usage("b", 10, 20, 0.5);
        m.upstream("a", Duration::from_millis(1));
        m.upstream("a", Duration::from_millis(1));
        let out = m.render(&[]);
        let tokens: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("litegate_tokens_total{"))
            .collect();
        assert_eq!(
            tokens,
            [
                r#"litegate_tokens_total{model="a",type="completion"} 2"#,
                r#"litegate_tokens_total{model="a",type="prompt"} 1"#,
                r#"litegate_tokens_total{model="b",type="completion"} 24"#,
                r#"litegate_tokens_total{model="b",type="prompt"} 13"#,
            ]
        );
        assert!(
            out.contains("litegate_spend_total{model=\"b\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("litegate_spend_total{model=\"a\"} 0.25\n"),
            "{out}"
        );
        assert!(
            out.contains("litegate_upstream_latency_seconds_count{model=\"a\"} 2\n"),
            "{out}"
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
