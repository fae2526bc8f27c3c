//! Writes every gitseal CRD into the chart: `crdgen [DIR]` (default `charts/gitseal/crds`).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("charts/gitseal/crds"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for (file, crd) in gitseal_api::crds() {
        let path = dir.join(file);
        let tmp = dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, gitseal_api::crd_yaml(&crd))?;
        std::fs::rename(&tmp, &path)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
