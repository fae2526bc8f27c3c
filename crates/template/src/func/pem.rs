//! ESO's `filterPEM`: the PEM blocks of one type, decoded as Go's `encoding/pem` decodes
//! them and encoded again as it encodes them.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::bytes_of;
use crate::func::text::{find, go_base64_decode};
use crate::value::{Buf, Meter, Value};

type R<'d> = Result<Value<'d>, String>;

/// One block, as Go's `pem.Block`.
struct Block<'s> {
    typ: &'s [u8],
    headers: BTreeMap<&'s [u8], &'s [u8]>,
    bytes: Buf,
}

/// Go's `getLine`: the first line without its line ending and trailing spaces and tabs,
/// and the rest.
fn get_line(data: &[u8]) -> (&[u8], &[u8]) {
    let (mut line, rest) = match memchr::memchr(b'\n', data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    if rest.len() < data.len() && line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    while let Some((&last, init)) = line.split_last() {
        if last != b' ' && last != b'\t' {
            break;
        }
        line = init;
    }
    (line, rest)
}

fn trim_space(s: &[u8]) -> &[u8] {
    crate::func::text::trim_space(s)
}

/// Go's `pem.Decode`: the first block and what follows it, or `None` and `data`.
fn decode<'s>(data: &'s [u8], meter: &Rc<Meter>) -> (Option<Block<'s>>, &'s [u8]) {
    const START: &[u8] = b"\n-----BEGIN ";
    const END: &[u8] = b"\n-----END ";
    const EOL: &[u8] = b"-----";
    let mut rest = data;
    loop {
        if rest.starts_with(&START[1..]) {
            rest = &rest[START.len() - 1..];
        } else if let Some(at) = find(rest, START) {
            rest = &rest[at + START.len()..];
        } else {
            return (None, data);
        }
        let (type_line, after) = get_line(rest);
        rest = after;
        let Some(typ) = type_line.strip_suffix(EOL) else {
            continue;
        };
        let mut headers = BTreeMap::new();
        loop {
            if rest.is_empty() {
                return (None, data);
            }
            let (line, next) = get_line(rest);
            let Some(colon) = memchr::memchr(b':', line) else {
                break;
            };
            headers.insert(trim_space(&line[..colon]), trim_space(&line[colon + 1..]));
            rest = next;
        }
        let (end_index, trailer_index) = if headers.is_empty() && rest.starts_with(&END[1..]) {
            (0, END.len() - 1)
        } else {
            match find(rest, END) {
                Some(i) => (i, i + END.len()),
                None => continue,
            }
        };
        let trailer = &rest[trailer_index..];
        let trailer_len = typ.len() + EOL.len();
        if trailer.len() < trailer_len {
            continue;
        }
        let (trailer, rest_of_line) = trailer.split_at(trailer_len);
        if !trailer.starts_with(typ) || !trailer.ends_with(EOL) {
            continue;
        }
        if !get_line(rest_of_line).0.is_empty() {
            continue;
        }
        let b64: Zeroizing<Vec<u8>> = Zeroizing::new(
            rest[..end_index]
                .iter()
                .copied()
                .filter(|&b| b != b' ' && b != b'\t')
                .collect(),
        );
        let Ok(bytes) = go_base64_decode(&b64, meter) else {
            continue;
        };
        let (_, after) = get_line(&rest[end_index + END.len() - 1..]);
        return (
            Some(Block {
                typ,
                headers,
                bytes,
            }),
            after,
        );
    }
}

/// Go's `pem.Encode`.
fn encode(out: &mut Buf, block: &Block<'_>) {
    out.extend(b"-----BEGIN ");
    out.extend(block.typ);
    out.extend(b"-----\n");
    if !block.headers.is_empty() {
        let proc_type: &[u8] = b"Proc-Type";
        if let Some(v) = block.headers.get(proc_type) {
            out.extend(b"Proc-Type: ");
            out.extend(v);
            out.push(b'\n');
        }
        for (k, v) in block.headers.iter().filter(|(k, _)| **k != proc_type) {
            out.extend(k);
            out.extend(b": ");
            out.extend(v);
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    // 48 bytes make a line of 64 characters.
    for line in block.bytes.bytes.chunks(48) {
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(line));
        out.extend(encoded.as_bytes());
        out.push(b'\n');
        if out.overflow.is_some() {
            return;
        }
    }
    out.extend(b"-----END ");
    out.extend(block.typ);
    out.extend(b"-----\n");
}

/// ESO's `filterPEM type input`: the blocks of `type` (compared without regard to case),
/// in order; an error when none is found and something that is not a block remains.
pub(crate) fn filter_pem<'d>(a: Vec<Value<'d>>, meter: &Rc<Meter>) -> R<'d> {
    let (want, input) = (bytes_of(&a[0]), bytes_of(&a[1]));
    // Whatever precedes the first "-----BEGIN" is skipped.
    let mut data = match find(input, b"-----BEGIN") {
        Some(at) => &input[at..],
        None => input,
    };
    let mut out = Buf::new(meter);
    let mut found = false;
    loop {
        let (block, rest) = decode(data, meter);
        data = rest;
        let Some(block) = block else { break };
        if let Some(overflow) = block.bytes.overflow {
            return Err(overflow.message("result"));
        }
        if eq_fold(block.typ, want) {
            found = true;
            encode(&mut out, &block);
        }
    }
    if !found && !data.is_empty() {
        return Err("error filtering pem: found junk".into());
    }
    out.into_value()
}

/// Go's `strings.EqualFold`, for the ASCII of PEM types (other characters must be equal).
fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(x), Ok(y)) => {
            x.len() == y.len()
                && x.chars()
                    .zip(y.chars())
                    .all(|(p, q)| p == q || p.to_lowercase().eq(q.to_lowercase()))
        }
        _ => a.eq_ignore_ascii_case(b),
    }
}
