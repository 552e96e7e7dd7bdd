//! The PostgreSQL URL as litegate reads it (issue 14): `postgresql://` / `postgres://`,
//! `sslmode` (`verify-full` / `verify-ca` read as `require`: the certificate is always
//! verified), `sslrootcert=<file>` taken out and trusted, the defaults litegate adds
//! (`connect_timeout`, `application_name`, the bound on every wait for the server), and the
//! rustls client configuration. The pool that uses them is `pg.rs`.

use std::time::Duration;

/// Connecting gives up after this long unless the URL says `connect_timeout`.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL URL as given (`postgresql://` or `postgres://`), prepared for the client:
/// `sslmode=verify-full`/`verify-ca` are read as `require` (the certificate is always verified
/// here, against the Mozilla roots and `sslrootcert`), `sslrootcert=<file>` is taken out and
/// its PEM certificates trusted.
pub(super) struct Target {
    pub(super) config: postgres::Config,
    pub(super) root_cert: Option<String>,
}

/// Whether `url` names a PostgreSQL database.
pub fn is_pg_url(url: &str) -> bool {
    url.starts_with("postgresql://") || url.starts_with("postgres://")
}

pub(super) fn target(url: &str) -> std::result::Result<Target, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut root_cert = None;
    let mut kept: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (k, v) {
            ("sslrootcert", v) => root_cert = Some(v.to_string()),
            ("sslmode", "verify-full" | "verify-ca") => kept.push("sslmode=require".into()),
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    // The parser's message never repeats the URL (which holds the password).
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL litegate can use: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    config.io_timeout(crate::config::DB_TIMEOUT);
    if config.get_application_name().is_none() {
        config.application_name("litegate");
    }
    Ok(Target { config, root_cert })
}

pub(super) fn tls(
    root_cert: Option<&str>,
) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = root_cert {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("sslrootcert {path}: {e}"))?;
        for c in certs {
            let c = c.map_err(|e| format!("sslrootcert {path}: {e}"))?;
            roots
                .add(c)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognized_and_prepared_without_echoing_the_password() {
        assert!(is_pg_url("postgresql://u:p@h/db"));
        assert!(is_pg_url("postgres://u:p@h/db"));
        assert!(!is_pg_url("litegate.db"));
        let t = target(
            "postgresql://u:secretpw@db.example:5433/lg?sslmode=verify-full&sslrootcert=/x.pem",
        )
        .expect("parsed");
        assert_eq!(t.root_cert.as_deref(), Some("/x.pem"));
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(t.config.get_dbname(), Some("lg"));
        assert_eq!(t.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(
            t.config.get_io_timeout(),
            Some(crate::config::DB_TIMEOUT),
            "every wait for the server is bounded by default"
        );
        let e = match target("postgresql://u:secretpw@h/db?sslmode=bogus") {
            Err(e) => e,
            Ok(_) => panic!("a bad sslmode must be refused"),
        };
        assert!(!e.contains("secretpw"), "{e}");
    }
}
