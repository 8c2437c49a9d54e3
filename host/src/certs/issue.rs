//! The webhook certificates as data: what a Secret holds, whether it still serves, and the next
//! one. Pure functions of the Secret's PEMs, the wanted names and the time, so every rotation
//! rule is a unit test.
//!
//! # Rotation, and why no admission is refused across it
//! - A certificate is renewed once less than a third of its lifetime is left, so the one being
//!   replaced is still valid for a third of its lifetime while every replica picks up the new one.
//! - A new serving certificate is signed by the CA that the webhook configurations already
//!   trust. A new CA is first *added* to the bundle (`ca.crt` holds the new CA and the old one
//!   while the old is valid), and the serving certificate moves to it only once the bundle with
//!   both is injected ([`Want::bundle_trusted`]).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Keys of the Secret, as upstream's cert-controller and cert-manager write them.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const TLS_CERT_KEY: &str = "tls.crt";
pub const TLS_KEY_KEY: &str = "tls.key";

/// How long a CA this controller makes is valid (as upstream's cert-controller: 10 years).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Backdating of `notBefore`, for API servers whose clock is a little behind ours.
const BACKDATE: Duration = Duration::from_secs(60);

/// The PEMs of the Secret (empty strings for absent keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pems {
    /// The CA bundle: the signing CA first, then older CAs still trusted.
    pub ca_cert: String,
    pub ca_key: String,
    pub tls_cert: String,
    pub tls_key: String,
}

impl Pems {
    /// Reads each PEM by its Secret key with `get` (empty when absent).
    pub fn from_keys(get: impl Fn(&str) -> String) -> Self {
        Pems {
            ca_cert: get(CA_CERT_KEY),
            ca_key: get(CA_KEY_KEY),
            tls_cert: get(TLS_CERT_KEY),
            tls_key: get(TLS_KEY_KEY),
        }
    }

    /// The four PEMs under their Secret keys, which are also the file names `lws install
    /// --dev` writes.
    pub fn by_key(&self) -> [(&'static str, &str); 4] {
        [
            (CA_CERT_KEY, &self.ca_cert),
            (CA_KEY_KEY, &self.ca_key),
            (TLS_CERT_KEY, &self.tls_cert),
            (TLS_KEY_KEY, &self.tls_key),
        ]
    }
}

/// What the serving certificate must be.
#[derive(Clone, Debug)]
pub struct Want {
    /// Subject alternative names: DNS names, or IP addresses in text form.
    pub hosts: Vec<String>,
    /// Lifetime of a new serving certificate.
    pub validity: Duration,
    /// The webhook configurations' caBundle equals `ca.crt` and did before this check, so a
    /// serving certificate of the newest CA is trusted by the API server.
    pub bundle_trusted: bool,
}

/// The facts of one certificate that rotation looks at.
#[derive(Clone, Debug)]
struct Facts {
    not_before: SystemTime,
    not_after: SystemTime,
    /// SubjectPublicKeyInfo, to match a key and to tell which CA signed.
    spki: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    is_ca: bool,
    hosts: Vec<String>,
}

impl Facts {
    fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now < self.not_after
    }

    /// The lifetime it was issued for: without the [`BACKDATE`] of `notBefore`, which would
    /// otherwise make a short-lived certificate renew early.
    fn lifetime(&self) -> Duration {
        let span = self.not_after.duration_since(self.not_before);
        span.unwrap_or_default().saturating_sub(BACKDATE)
    }

    /// When a third of its lifetime is left.
    fn renew_at(&self) -> SystemTime {
        self.not_after - self.lifetime() / 3
    }

    /// Valid now and more than a third of its lifetime left.
    fn fresh_at(&self, now: SystemTime) -> bool {
        self.valid_at(now) && now < self.renew_at()
    }
}

/// Every certificate in a PEM string, in order; unparsable blocks are skipped.
fn parse_all(pem: &str) -> Vec<(Facts, String)> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).flatten() {
        let Ok(cert) = block.parse_x509() else {
            continue;
        };
        let time = |t: x509_parser::time::ASN1Time| {
            UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
        };
        let hosts = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => ip_text(ip),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let facts = Facts {
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            spki: cert.public_key().raw.to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            is_ca: cert.is_ca(),
            hosts,
        };
        out.push((facts, pem_of(&block.contents)));
    }
    out
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The SubjectPublicKeyInfo of a PEM private key, if it parses.
fn key_spki(key_pem: &str) -> Option<Vec<u8>> {
    KeyPair::from_pem(key_pem)
        .ok()
        .map(|key| key.subject_public_key_info())
}

/// What a check found the Secret's serving certificate fit for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Keep,
    /// Write these PEMs (a new CA, a new serving certificate, or both), for `reason`.
    Write { pems: Pems, reason: &'static str },
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the host name {0:?} is neither a DNS name nor an IP address")]
    Host(String),
}

/// Checks the Secret's PEMs against `want` at `now`; says what to write, if anything.
pub fn check(current: &Pems, want: &Want, now: SystemTime) -> Result<Verdict, IssueError> {
    let cas = parse_all(&current.ca_cert);
    let signer = cas.first().filter(|(ca, _)| {
        ca.is_ca && key_spki(&current.ca_key).is_some_and(|spki| spki == ca.spki)
    });
    let serving = parse_all(&current.tls_cert).into_iter().next();
    let serving_ok = serving.as_ref().is_some_and(|(cert, _)| {
        key_spki(&current.tls_key).is_some_and(|spki| spki == cert.spki) && cert.valid_at(now)
    });

    let Some((ca, _)) = signer.filter(|(ca, _)| ca.fresh_at(now)) else {
        // A new CA goes first in the bundle; older CAs stay while valid, so the serving
        // certificate they signed stays trusted until it is replaced.
        let (ca_cert, ca_key) = new_ca(now)?;
        let mut bundle = ca_cert;
        for (old, pem) in &cas {
            if old.valid_at(now) {
                bundle.push_str(pem);
            }
        }
        let mut pems = Pems {
            ca_cert: bundle,
            ca_key,
            ..current.clone()
        };
        if !serving_ok {
            // Nothing valid is served, so there is nothing to keep trusted: sign at once.
            let (tls_cert, tls_key) = new_serving(&pems, want, now)?;
            pems.tls_cert = tls_cert;
            pems.tls_key = tls_key;
        }
        return Ok(Verdict::Write {
            pems,
            reason: if cas.is_empty() {
                "no CA"
            } else {
                "CA expiring, invalid or without its key"
            },
        });
    };

    let reason = match &serving {
        _ if !serving_ok => Some("no valid serving certificate"),
        Some((cert, _)) if !same_hosts(&cert.hosts, &want.hosts) => Some("host names changed"),
        Some((cert, _)) if !cert.fresh_at(now) => Some("serving certificate expiring"),
        // A shorter lifetime asked for (e.g. to test rotation) applies at once.
        Some((cert, _)) if cert.lifetime() > want.validity + Duration::from_secs(1) => {
            Some("validity shortened")
        }
        Some((cert, _)) if cert.issuer != ca.subject && want.bundle_trusted => {
            Some("moving to the newest CA")
        }
        _ => None,
    };
    let pruned = prune(&cas, now);
    match reason {
        Some(reason) => {
            let mut pems = Pems {
                ca_cert: pruned,
                ..current.clone()
            };
            let (tls_cert, tls_key) = new_serving(&pems, want, now)?;
            pems.tls_cert = tls_cert;
            pems.tls_key = tls_key;
            Ok(Verdict::Write { pems, reason })
        }
        None if pruned != current.ca_cert && want.bundle_trusted => Ok(Verdict::Write {
            pems: Pems {
                ca_cert: pruned,
                ..current.clone()
            },
            reason: "dropping expired CAs from the bundle",
        }),
        None => Ok(Verdict::Keep),
    }
}

/// The bundle without expired CAs, in PEM (canonical form, so it compares stably).
fn prune(cas: &[(Facts, String)], now: SystemTime) -> String {
    cas.iter()
        .filter(|(ca, _)| ca.valid_at(now))
        .map(|(_, pem)| pem.as_str())
        .collect()
}

fn same_hosts(have: &[String], want: &[String]) -> bool {
    let mut have = have.to_vec();
    let mut want = want.to_vec();
    have.sort();
    want.sort();
    have == want
}

fn offset(t: SystemTime) -> time::OffsetDateTime {
    let seconds = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    time::OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A self-signed CA valid for [`CA_VALIDITY`]: (certificate PEM, key PEM).
fn new_ca(now: SystemTime) -> Result<(String, String), IssueError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "lws");
    // A CA of each rotation has a subject of its own, so a serving certificate names which
    // CA signed it.
    let stamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("lws-webhook-ca-{stamp}"));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = offset(now - BACKDATE);
    params.not_after = offset(now + CA_VALIDITY);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((pem_of(cert.der()), key.serialize_pem()))
}

/// A serving certificate for `want.hosts`, signed by the first CA of `pems`, never outliving it.
fn new_serving(pems: &Pems, want: &Want, now: SystemTime) -> Result<(String, String), IssueError> {
    let ca_pem = parse_all(&pems.ca_cert)
        .into_iter()
        .next()
        .map(|(_, pem)| pem)
        .unwrap_or_default();
    let ca_not_after = parse_all(&ca_pem)
        .first()
        .map(|(ca, _)| ca.not_after)
        .unwrap_or(now + want.validity);
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, KeyPair::from_pem(&pems.ca_key)?)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    for host in &want.hosts {
        params.subject_alt_names.push(san(host)?);
    }
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        want.hosts.first().cloned().unwrap_or_default(),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.not_before = offset(now - BACKDATE);
    params.not_after = offset((now + want.validity).min(ca_not_after));
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((pem_of(cert.der()), key.serialize_pem()))
}

/// `host` as a subject alternative name: an IP address, or a DNS name of RFC 1123 labels
/// (a leading `*.` allowed).
pub fn san(host: &str) -> Result<SanType, IssueError> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() > 253 || !name.split('.').all(label_ok) {
        return Err(IssueError::Host(host.to_string()));
    }
    let dns = host
        .to_string()
        .try_into()
        .map_err(|_| IssueError::Host(host.to_string()))?;
    Ok(SanType::DnsName(dns))
}

/// When the first certificate in `cert_pem` should next be looked at: when a third of its
/// lifetime is left (the check also runs periodically, this only shortens the wait).
pub fn renew_at(cert_pem: &str) -> Option<SystemTime> {
    let (cert, _) = parse_all(cert_pem).into_iter().next()?;
    Some(cert.renew_at())
}

/// The first certificate's validity in `cert_pem`, if it parses: (notBefore, notAfter).
pub fn validity(cert_pem: &str) -> Option<(SystemTime, SystemTime)> {
    let (cert, _) = parse_all(cert_pem).into_iter().next()?;
    Some((cert.not_before, cert.not_after))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn want(trusted: bool) -> Want {
        Want {
            hosts: vec![
                "lws-webhook-service.lws-system.svc".into(),
                "127.0.0.1".into(),
            ],
            validity: 90 * HOUR,
            bundle_trusted: trusted,
        }
    }

    fn written(verdict: Verdict) -> (Pems, &'static str) {
        match verdict {
            Verdict::Write { pems, reason } => (pems, reason),
            Verdict::Keep => panic!("expected a write"),
        }
    }

    fn start() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_900_000_000)
    }

    #[test]
    fn an_empty_secret_gets_a_ca_and_a_serving_certificate_for_the_hosts() {
        let (pems, reason) = written(check(&Pems::default(), &want(false), start()).unwrap());
        assert_eq!(reason, "no CA");
        let serving = &parse_all(&pems.tls_cert)[0].0;
        assert_eq!(
            serving.hosts,
            ["lws-webhook-service.lws-system.svc", "127.0.0.1"]
        );
        let ca = &parse_all(&pems.ca_cert)[0].0;
        assert!(ca.is_ca);
        assert_eq!(serving.issuer, ca.subject);
        assert_eq!(
            serving.not_after,
            start() + 90 * HOUR,
            "validity is the wanted one"
        );
        assert_eq!(
            check(&pems, &want(false), start()).unwrap(),
            Verdict::Keep,
            "a fresh Secret is kept"
        );
    }

    #[test]
    fn the_serving_certificate_is_renewed_when_a_third_is_left_and_keeps_its_ca() {
        let (pems, _) = written(check(&Pems::default(), &want(true), start()).unwrap());
        assert_eq!(
            check(&pems, &want(true), start() + 59 * HOUR).unwrap(),
            Verdict::Keep
        );
        let (renewed, reason) = written(check(&pems, &want(true), start() + 61 * HOUR).unwrap());
        assert_eq!(reason, "serving certificate expiring");
        assert_eq!(renewed.ca_cert, pems.ca_cert, "the trusted CA stays");
        assert_ne!(renewed.tls_cert, pems.tls_cert);
        assert_eq!(renew_at(&pems.tls_cert), Some(start() + 60 * HOUR));
    }

    #[test]
    fn a_shorter_validity_reissues_at_once_a_longer_one_waits_for_renewal() {
        let (pems, _) = written(check(&Pems::default(), &want(true), start()).unwrap());
        let mut shorter = want(true);
        shorter.validity = Duration::from_secs(60);
        let (reissued, reason) = written(check(&pems, &shorter, start()).unwrap());
        assert_eq!(reason, "validity shortened");
        assert_eq!(check(&reissued, &shorter, start()).unwrap(), Verdict::Keep);
        let mut longer = want(true);
        longer.validity = 900 * HOUR;
        assert_eq!(check(&pems, &longer, start()).unwrap(), Verdict::Keep);
    }

    #[test]
    fn a_new_ca_is_added_to_the_bundle_before_the_serving_certificate_moves_to_it() {
        let (pems, _) = written(check(&Pems::default(), &want(true), start()).unwrap());
        let later = start() + CA_VALIDITY * 2 / 3 + HOUR;
        // The old serving certificate is long expired by then: make a still valid one.
        let pems = Pems {
            tls_cert: String::new(),
            ..pems
        };
        let (with_serving, _) = written(check(&pems, &want(true), later - 2 * HOUR).unwrap());
        let (rotated, reason) = written(check(&with_serving, &want(false), later).unwrap());
        assert_eq!(reason, "CA expiring, invalid or without its key");
        assert_eq!(parse_all(&rotated.ca_cert).len(), 2, "new CA and old CA");
        assert_eq!(
            rotated.tls_cert, with_serving.tls_cert,
            "still served by the old CA"
        );
        assert_eq!(
            check(&rotated, &want(false), later).unwrap(),
            Verdict::Keep,
            "waits for the bundle to be trusted"
        );
        let (moved, reason) = written(check(&rotated, &want(true), later).unwrap());
        assert_eq!(reason, "moving to the newest CA");
        let new_ca = &parse_all(&moved.ca_cert)[0].0;
        assert_eq!(parse_all(&moved.tls_cert)[0].0.issuer, new_ca.subject);
    }

    #[test]
    fn changed_hosts_a_foreign_key_or_garbage_get_a_new_serving_certificate() {
        let (pems, _) = written(check(&Pems::default(), &want(false), start()).unwrap());
        let mut other = want(false);
        other.hosts.push("lws.example".into());
        assert_eq!(
            written(check(&pems, &other, start()).unwrap()).1,
            "host names changed"
        );
        let (other_pems, _) = written(check(&Pems::default(), &want(false), start()).unwrap());
        let mixed = Pems {
            tls_key: other_pems.tls_key,
            ..pems.clone()
        };
        assert_eq!(
            written(check(&mixed, &want(false), start()).unwrap()).1,
            "no valid serving certificate"
        );
        let garbage = Pems {
            ca_cert: "not a pem".into(),
            ..pems
        };
        assert_eq!(
            written(check(&garbage, &want(false), start()).unwrap()).1,
            "no CA"
        );
    }

    #[test]
    fn a_host_that_is_no_name_is_an_error_not_a_panic() {
        let mut bad = want(false);
        bad.hosts = vec!["not a host!".into()];
        assert!(matches!(
            check(&Pems::default(), &bad, start()),
            Err(IssueError::Host(host)) if host == "not a host!"
        ));
        for good in [
            "lws-webhook-service.lws-system.svc",
            "*.svc",
            "127.0.0.2",
            "::1",
        ] {
            assert!(san(good).is_ok(), "{good}");
        }
        for bad in ["", "-a.svc", "a..b", "UPPER.svc", "a_b"] {
            assert!(san(bad).is_err(), "{bad:?}");
        }
    }
}
