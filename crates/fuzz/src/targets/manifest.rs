//! `manifest`: a pack's `manifest.json`, parsed and checked, then asked what the app asks
//! of it (the files it needs, each entry, the shard of a feature).

use glassbox_pack::Pack;

use super::Target;
use crate::Behaviour;
use crate::seeds::repo_text;

/// The default pack's manifest.
pub(super) const BROWN_MANIFEST: &str = "www/packs/brown/manifest.json";

pub(super) fn target() -> Result<Target, String> {
    let brown = repo_text(BROWN_MANIFEST)?;
    let version_1 = brown.replacen("\"format_version\": 2", "\"format_version\": 1", 1);
    Ok(Target {
        name: "manifest",
        text: true,
        seeds: vec![brown.into_bytes(), version_1.into_bytes()],
        run: Box::new(run),
    })
}

fn run(input: &[u8]) -> Behaviour {
    let mut b = Behaviour::default();
    if let Some(pack) = b.stage("parse", Pack::parse_manifest(input)) {
        use_manifest(&mut b, &pack);
    }
    b
}

/// What the app asks of a parsed manifest: each file it needs, and where features are.
pub(super) fn use_manifest(b: &mut Behaviour, pack: &Pack) {
    let paths = pack.required_paths();
    b.stage(
        "entries",
        paths
            .iter()
            .try_for_each(|path| pack.entry(path).map(|_| ())),
    );
    let dictionaries = &pack.manifest().dictionaries;
    b.stage(
        "shards",
        dictionaries.iter().try_for_each(|d| {
            pack.shard_path(d.layer, 0)?;
            pack.shard_path(d.layer, d.d_sae.saturating_sub(1))
                .map(|_| ())
        }),
    );
    for d in dictionaries {
        let _ = pack.shard_path(d.layer, d.d_sae);
        let _ = pack.shard_path(d.layer, usize::MAX);
    }
    let _ = pack.manifest().features.locate(usize::MAX, usize::MAX);
}
