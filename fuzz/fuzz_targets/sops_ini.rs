//! The SOPS INI store: any input reads without panic; a file it reads, written back,
//! reads as the same tree — for the trees INI carries verbatim. Values are written
//! unquoted (as go-ini writes most values), so a value that the reader would unquote
//! (`"…"`, `` `…` ``, `"""…`) or that holds a newline (written as `\n`, which the reader
//! keeps as is outside the `[sops]` section) or spaces at either end (a `"""` value can)
//! are left out.
#![no_main]

use gitseal_crypto::sops::store::Format;
use gitseal_crypto::sops::tree::{MapItem, Node, Scalar, Tree};
use gitseal_fuzz::check_store_round_trip;
use libfuzzer_sys::fuzz_target;

fn carried_verbatim(tree: &Tree) -> bool {
    let Some(doc) = tree.documents.first() else {
        return true;
    };
    doc.iter().all(|item| match item {
        MapItem::Entry(_, Node::Map(items)) => items.iter().all(|item| match item {
            MapItem::Entry(_, Node::Scalar(Scalar::Str(value))) => {
                let quoted = value.len() >= 2
                    && ((value.starts_with('"') && value.ends_with('"'))
                        || (value.starts_with('`') && value.ends_with('`')));
                !quoted
                    && !value.starts_with("\"\"\"")
                    && !value.contains('\n')
                    && value.trim() == value
            }
            _ => true,
        }),
        _ => true,
    })
}

fuzz_target!(|data: &[u8]| {
    match Format::Ini.parse_plain(data) {
        Ok(tree) if carried_verbatim(&tree) => check_store_round_trip(Format::Ini, data, true),
        _ => {}
    }
});
