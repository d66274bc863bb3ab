//! The TAXII client over TLS: it trusts a private CA from config, presents its client
//! certificate when the server requires one, refuses TLS below 1.2, and fails clearly when the
//! certificate is missing. The server is a minimal HTTPS endpoint (rustls) answering TAXII
//! discovery, with client authentication required.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use soc_forwarder::taxii::{ClientOptions, TaxiiClient, TaxiiError};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    server: rcgen::Certificate,
    server_key: rcgen::KeyPair,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "NCSC test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().signed_by(&server_key, &ca, &ca_key).unwrap();
    Pki { dir: tempfile::tempdir().unwrap(), ca, ca_key, server, server_key }
}

impl Pki {
    fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn client(&self, cn: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![format!("{cn}.test")]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (self.write(&format!("{cn}.crt"), &cert.pem()), self.write(&format!("{cn}.key"), &key.serialize_pem()))
    }
}

/// Serves TAXII discovery over TLS 1.2+ to clients with a certificate from the CA; returns the
/// port. Each connection answers one request.
async fn server(p: &Pki) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(p.ca.der().to_vec())).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(p.server.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.server_key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"title":"NCSC test","api_roots":["https://localhost/api1/"]}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/taxii+json;version=2.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_client_presents_its_certificate_and_trusts_the_configured_ca() {
    let p = pki();
    let port = server(&p).await;
    let ca = p.write("ca.pem", &p.ca.pem());
    let (cert, key) = p.client("soc");
    let url = format!("https://localhost:{port}/taxii2/");
    let ok = TaxiiClient::new(&ClientOptions {
        ca_cert: Some(ca.clone()),
        client_cert: Some(cert.clone()),
        client_key: Some(key.clone()),
        ..Default::default()
    })
    .unwrap();
    let d = ok.discovery(&url).await.expect("discovery with a client certificate");
    assert_eq!(d["title"], "NCSC test");

    // Without the certificate the server refuses the handshake: a transport error, not a panic.
    let no_cert = TaxiiClient::new(&ClientOptions { ca_cert: Some(ca.clone()), ..Default::default() }).unwrap();
    let err = no_cert.discovery(&url).await.expect_err("a certificate is required");
    assert!(matches!(err, TaxiiError::Transport { .. }), "{err:?}");

    // Without the private CA the server is not trusted.
    let no_ca =
        TaxiiClient::new(&ClientOptions { client_cert: Some(cert), client_key: Some(key), ..Default::default() })
            .unwrap();
    let err = no_ca.discovery(&url).await.expect_err("unknown CA");
    assert!(matches!(err, TaxiiError::Transport { .. }), "{err:?}");
}

#[test]
fn unreadable_certificate_files_are_configuration_errors_naming_the_file() {
    let err = TaxiiClient::new(&ClientOptions { client_cert: Some("no/such/client.crt".into()), ..Default::default() })
        .expect_err("missing file");
    assert!(matches!(&err, TaxiiError::Config(m) if m.contains("client.crt")), "{err:?}");
    let p = pki();
    let junk = p.write("junk.pem", "not a certificate");
    let err = TaxiiClient::new(&ClientOptions { ca_cert: Some(junk), ..Default::default() }).err();
    // A PEM file without certificates is either refused at configuration or adds no root.
    if let Some(e) = err {
        assert!(matches!(&e, TaxiiError::Config(m) if m.contains("junk.pem")), "{e:?}");
    }
}
