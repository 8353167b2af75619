//! The identity in a client certificate: the subject's common name, or
//! else the first DNS name of its subjectAltName extension. rustls has
//! verified the certificate already; this only reads two fields, with a
//! reader of DER's tag-length-value encoding just large enough for them.
//! Anything it cannot read gives no identity rather than an error.

/// The object identifier of the common name attribute (2.5.4.3), encoded.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// The object identifier of subjectAltName (2.5.29.17), encoded.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const VERSION: u8 = 0xa0;
const EXTENSIONS: u8 = 0xa3;
/// A GeneralName's dNSName choice (context tag 2, primitive).
const DNS_NAME: u8 = 0x82;

/// The common name of the certificate (DER) given, else its first DNS
/// name; control characters are shown escaped, since the name is logged.
pub fn common_name_or_dns_name(cert: &[u8]) -> Option<String> {
    let certificate = Elements::new(cert).next_with(SEQUENCE)?;
    let tbs = Elements::new(certificate).next_with(SEQUENCE)?;
    let mut fields = Elements::new(tbs).peekable();
    if fields.peek().map(|(tag, _)| *tag) == Some(VERSION) {
        fields.next();
    }
    // serial number, signature algorithm, issuer, validity, then subject.
    let (subject_tag, subject) = fields.nth(4)?;
    if subject_tag != SEQUENCE {
        return None;
    }
    let name = common_name(subject).or_else(|| {
        let extensions = fields.find(|(tag, _)| *tag == EXTENSIONS)?.1;
        first_dns_name(Elements::new(extensions).next_with(SEQUENCE)?)
    })?;
    Some(if name.chars().any(char::is_control) { name.escape_debug().to_string() } else { name })
}

fn common_name(subject: &[u8]) -> Option<String> {
    for (_, set) in Elements::new(subject).filter(|(tag, _)| *tag == SET) {
        for (_, attribute) in Elements::new(set).filter(|(tag, _)| *tag == SEQUENCE) {
            let mut parts = Elements::new(attribute);
            if parts.next() == Some((OID, COMMON_NAME)) {
                let (tag, value) = parts.next()?;
                return directory_string(tag, value);
            }
        }
    }
    None
}

/// A directory string's text: UTF8String, PrintableString, IA5String,
/// or BMPString (UTF-16).
fn directory_string(tag: u8, value: &[u8]) -> Option<String> {
    match tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(value).ok().map(str::to_string),
        0x1e if value.len().is_multiple_of(2) => {
            let units: Vec<u16> = value.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn first_dns_name(extensions: &[u8]) -> Option<String> {
    for (_, extension) in Elements::new(extensions).filter(|(tag, _)| *tag == SEQUENCE) {
        let mut parts = Elements::new(extension);
        if parts.next() != Some((OID, SUBJECT_ALT_NAME)) {
            continue;
        }
        // An optional `critical` flag comes before the value.
        let value = parts.find(|(tag, _)| *tag == OCTET_STRING)?.1;
        let names = Elements::new(value).next_with(SEQUENCE)?;
        return Elements::new(names)
            .find(|(tag, _)| *tag == DNS_NAME)
            .and_then(|(_, name)| std::str::from_utf8(name).ok().map(str::to_string));
    }
    None
}

/// The elements of DER content, one (tag, content) at a time; stops at
/// the first one that is malformed (a length past the end, a tag of more
/// than one byte, a length of more than four bytes).
struct Elements<'a> {
    rest: &'a [u8],
}

impl<'a> Elements<'a> {
    fn new(der: &'a [u8]) -> Elements<'a> {
        Elements { rest: der }
    }

    fn next_with(&mut self, tag: u8) -> Option<&'a [u8]> {
        self.next().filter(|(t, _)| *t == tag).map(|(_, content)| content)
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&tag, rest) = self.rest.split_first()?;
        // The high tag number form (low five bits all set) is not used by
        // any field read here.
        if tag & 0x1f == 0x1f {
            self.rest = &[];
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                self.rest = &[];
                return None;
            }
            let (digits, after) = rest.split_at(count);
            rest = after;
            digits.iter().fold(0usize, |n, d| (n << 8) | usize::from(*d))
        };
        if rest.len() < len {
            self.rest = &[];
            return None;
        }
        let (content, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER for `tag` around `content` (short or two-byte length).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    fn name_with_cn(cn: &[u8], string_tag: u8) -> Vec<u8> {
        let attribute = [tlv(OID, COMMON_NAME), tlv(string_tag, cn)].concat();
        tlv(SEQUENCE, &tlv(SET, &tlv(SEQUENCE, &attribute)))
    }

    fn san(dns: &[&str]) -> Vec<u8> {
        let names: Vec<u8> = dns.iter().flat_map(|d| tlv(DNS_NAME, d.as_bytes())).collect();
        let extension = [tlv(OID, SUBJECT_ALT_NAME), tlv(0x01, &[0xff]), tlv(OCTET_STRING, &tlv(SEQUENCE, &names))];
        tlv(EXTENSIONS, &tlv(SEQUENCE, &tlv(SEQUENCE, &extension.concat())))
    }

    /// A certificate shaped as X.509 lays it out (version, serial,
    /// algorithm, issuer, validity, subject, key, extensions), with
    /// placeholder content where only the shape matters.
    fn certificate(subject: Vec<u8>, extensions: Option<Vec<u8>>) -> Vec<u8> {
        let mut tbs = [
            tlv(VERSION, &tlv(0x02, &[2])),
            tlv(0x02, &[0x10, 0x00]),
            tlv(SEQUENCE, &tlv(OID, &[0x2a, 0x86, 0x48])),
            name_with_cn(b"Issuer CA", 0x0c),
            tlv(SEQUENCE, &[]),
            subject,
            tlv(SEQUENCE, &[0u8; 200]),
        ]
        .concat();
        if let Some(e) = extensions {
            tbs.extend(e);
        }
        tlv(SEQUENCE, &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[]), tlv(0x03, &[0, 1, 2])].concat())
    }

    #[test]
    fn the_common_name_is_the_identity() {
        let cert = certificate(name_with_cn(b"billing-worker", 0x0c), Some(san(&["other.example"])));
        assert_eq!(common_name_or_dns_name(&cert).as_deref(), Some("billing-worker"));
        let cert = certificate(name_with_cn(b"printable", 0x13), None);
        assert_eq!(common_name_or_dns_name(&cert).as_deref(), Some("printable"));
        let bmp: Vec<u8> = "bmp-name".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(common_name_or_dns_name(&certificate(name_with_cn(&bmp, 0x1e), None)).as_deref(), Some("bmp-name"));
    }

    #[test]
    fn without_a_common_name_the_first_dns_name_is_the_identity() {
        let cert = certificate(tlv(SEQUENCE, &[]), Some(san(&["first.example", "second.example"])));
        assert_eq!(common_name_or_dns_name(&cert).as_deref(), Some("first.example"));
        assert_eq!(common_name_or_dns_name(&certificate(tlv(SEQUENCE, &[]), None)), None);
    }

    #[test]
    fn control_characters_are_escaped_and_garbage_gives_no_identity() {
        let cert = certificate(name_with_cn(b"evil\nINFO forged line", 0x0c), None);
        assert_eq!(common_name_or_dns_name(&cert).as_deref(), Some("evil\\nINFO forged line"));
        let cert = certificate(name_with_cn(b"x", 0x0c), None);
        for cut in 0..cert.len() {
            let _ = common_name_or_dns_name(&cert[..cut]);
        }
        assert_eq!(common_name_or_dns_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name_or_dns_name(&[]), None);
    }
}
