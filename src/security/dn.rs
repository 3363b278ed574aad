//! Distinguished names for `verify_and_map`, compared as the reference
//! compares them (its `ldap` DN package): attribute types without regard
//! to case, values exactly, the attributes of a multi-valued RDN in any
//! order. A user whose DN equals the certificate's wins; failing that, a
//! user whose DN has the same RDNs in another order.
//!
//! User DNs are parsed once per configuration, the certificate's once per
//! connection; nothing here runs per message.

/// One attribute of an RDN: type (as written) and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub kind: String,
    pub value: String,
}

/// A DN, most specific RDN first (the RFC 4514 string order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dn {
    pub rdns: Vec<Vec<Attr>>,
}

impl Attr {
    fn equal(&self, o: &Attr) -> bool {
        self.kind.eq_ignore_ascii_case(&o.kind) && self.value == o.value
    }
}

/// Every attribute of `b` is among `a`'s.
fn has_all(a: &[Attr], b: &[Attr]) -> bool {
    b.iter().all(|x| a.iter().any(|y| y.equal(x)))
}

fn rdn_equal(a: &[Attr], b: &[Attr]) -> bool {
    a.len() == b.len() && has_all(a, b) && has_all(b, a)
}

impl Dn {
    /// Same RDNs in the same order.
    pub fn equal(&self, other: &Dn) -> bool {
        self.rdns.len() == other.rdns.len()
            && self
                .rdns
                .iter()
                .zip(&other.rdns)
                .all(|(a, b)| rdn_equal(a, b))
    }

    /// Each of this DN's RDNs is somewhere in `other`, which has as many:
    /// the reference's check for a reordered DN.
    pub fn rdns_match(&self, other: &Dn) -> bool {
        self.rdns.len() == other.rdns.len()
            && self
                .rdns
                .iter()
                .all(|r| other.rdns.iter().any(|o| rdn_equal(r, o)))
    }

    /// Parses an RFC 4514 string as the reference's `ParseDN` does;
    /// `None` where it reports an error.
    pub fn parse(s: &str) -> Option<Dn> {
        let b = s.as_bytes();
        let mut dn = Dn::default();
        let mut rdn: Vec<Attr> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut kind: Option<String> = None;
        let mut escaping = false;
        let mut trailing = 0usize;
        let take = |buf: &mut Vec<u8>, trailing: &mut usize| {
            let n = buf.len() - (*trailing).min(buf.len());
            let s = String::from_utf8_lossy(&buf[..n]).into_owned();
            buf.clear();
            *trailing = 0;
            s
        };
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if escaping {
                trailing = 0;
                escaping = false;
                if matches!(
                    c,
                    b' ' | b'"' | b'#' | b'+' | b',' | b';' | b'<' | b'=' | b'>' | b'\\'
                ) {
                    buf.push(c);
                    i += 1;
                    continue;
                }
                // A hex-encoded octet.
                let hex = b.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                buf.push(v);
                i += 2;
                continue;
            }
            match c {
                b'\\' => {
                    trailing = 0;
                    escaping = true;
                }
                b'=' => {
                    kind = Some(take(&mut buf, &mut trailing));
                    if b.get(i + 1) == Some(&b'#') {
                        return None;
                    }
                }
                b',' | b'+' => {
                    let k = kind.take().filter(|k| !k.is_empty())?;
                    let value = take(&mut buf, &mut trailing);
                    rdn.push(Attr { kind: k, value });
                    if c == b',' {
                        dn.rdns.push(std::mem::take(&mut rdn));
                    }
                }
                b' ' if buf.is_empty() => {}
                _ => {
                    if c == b' ' {
                        trailing += 1;
                    } else {
                        trailing = 0;
                    }
                    buf.push(c);
                }
            }
            i += 1;
        }
        if !buf.is_empty() {
            let k = kind.take().filter(|k| !k.is_empty())?;
            let value = take(&mut buf, &mut trailing);
            rdn.push(Attr { kind: k, value });
            dn.rdns.push(rdn);
        }
        Some(dn)
    }

    /// The subject DN of a DER certificate as the reference reads it from
    /// the raw subject: RDNs (and the attributes within each) in reverse
    /// order, types by short name. `None` when an attribute type is not
    /// one the reference names or a value is not a string.
    pub fn of_certificate(der: &[u8]) -> Option<Dn> {
        use x509_parser::oid_registry as oids;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut dn = Dn::default();
        let rdns: Vec<_> = cert.subject().iter().collect();
        for rdn in rdns.iter().rev() {
            let attrs: Vec<_> = rdn.iter().collect();
            if attrs.is_empty() {
                continue;
            }
            let mut out = Vec::with_capacity(attrs.len());
            for a in attrs.iter().rev() {
                let oid = a.attr_type();
                let kind = if *oid == oids::OID_X509_COMMON_NAME {
                    "CN"
                } else if *oid == oids::OID_X509_SERIALNUMBER {
                    "SERIALNUMBER"
                } else if *oid == oids::OID_X509_COUNTRY_NAME {
                    "C"
                } else if *oid == oids::OID_X509_LOCALITY_NAME {
                    "L"
                } else if *oid == oids::OID_X509_STATE_OR_PROVINCE_NAME {
                    "ST"
                } else if *oid == oids::OID_X509_STREET_ADDRESS {
                    "STREET"
                } else if *oid == oids::OID_X509_ORGANIZATION_NAME {
                    "O"
                } else if *oid == oids::OID_X509_ORGANIZATIONAL_UNIT {
                    "OU"
                } else if *oid == oids::OID_X509_POSTAL_CODE {
                    "POSTALCODE"
                } else if *oid == oids::OID_DOMAIN_COMPONENT {
                    "DC"
                } else {
                    return None;
                };
                let value = a.as_str().ok()?.to_string();
                out.push(Attr {
                    kind: kind.to_string(),
                    value,
                });
            }
            dn.rdns.push(out);
        }
        Some(dn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap()
    }

    #[test]
    fn parse_like_the_reference() {
        let d = dn("CN=alice, O=Acme\\, Inc.,C=US");
        assert_eq!(d.rdns.len(), 3);
        assert_eq!(d.rdns[1][0].value, "Acme, Inc.");
        assert_eq!(dn("cn=a+ou=b").rdns[0].len(), 2);
        assert_eq!(dn("CN=\\41b").rdns[0][0].value, "Ab");
        assert!(Dn::parse("alice").is_none());
        assert!(Dn::parse("CN=#0101").is_none());
        assert_eq!(dn("CN=a  ").rdns[0][0].value, "a");
    }

    #[test]
    fn equal_and_reordered() {
        let cert = dn("CN=alice,OU=eng,O=Acme,C=US");
        assert!(dn("cn=alice, ou=eng, o=Acme, c=US").equal(&cert));
        assert!(!dn("CN=alice,OU=eng,O=acme,C=US").equal(&cert));
        let reordered = dn("C=US,O=Acme,OU=eng,CN=alice");
        assert!(!reordered.equal(&cert));
        assert!(reordered.rdns_match(&cert));
        assert!(!dn("C=US,O=Acme,CN=alice").rdns_match(&cert));
        assert!(dn("OU=eng+CN=x,C=US").equal(&dn("CN=x+OU=eng,C=US")));
    }
}
