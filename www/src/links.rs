//! Lists that views keep in their links:
//! - the steering view's features: `layer/index:c<value>` to clamp a feature to a value,
//!   `layer/index:x<factor>` to scale it (`x0` ablates), comma-separated, e.g.
//!   `1/3:c20,2/5:x0`;
//! - the circuit view's supernodes: `label:id,id` for each, `;`-separated, e.g.
//!   `say Atlanta:2_17_6,3_40_6;city:1_3_5`;
//! - the circuit view's graph steering: a feature node's id and the activation it is set
//!   to (`layer_feature_position:value`, `:0` ablating it), or an error node's id
//!   (`error_layer_position`: taken out), comma-separated, e.g. `0_2030_4:0,error_3_5`.

use glassbox_lab::{
    FeatureSteer, MAX_NODE_EDITS, MAX_STEERED_FEATURES, NodeEdit, SteerMode, Supernode,
};

/// Reads a feature list; the error says which entry is wrong and how it should look.
pub fn parse_steer_features(text: &str) -> Result<Vec<FeatureSteer>, String> {
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(MAX_STEERED_FEATURES + 1)
        .collect();
    if entries.len() > MAX_STEERED_FEATURES {
        return Err(format!(
            "more than {MAX_STEERED_FEATURES} steered features; steer at most \
             {MAX_STEERED_FEATURES} at once"
        ));
    }
    entries
        .into_iter()
        .map(|entry| {
            let bad = || {
                format!(
                    "`{entry}` is not a steered feature: write layer/index:c<value> to clamp \
                     or layer/index:x<factor> to scale, e.g. 1/3:c20 or 2/5:x0"
                )
            };
            let (feature, mode) = entry.split_once(':').ok_or_else(bad)?;
            let (layer, index) = feature.split_once('/').ok_or_else(bad)?;
            let layer = layer.trim().parse().map_err(|_| bad())?;
            let feature = index.trim().parse().map_err(|_| bad())?;
            let mode = mode.trim();
            let number = |s: &str| -> Result<f32, String> {
                s.parse::<f32>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(bad)
            };
            let mode = if let Some(v) = mode.strip_prefix('c') {
                SteerMode::Clamp(number(v)?)
            } else if let Some(v) = mode.strip_prefix('x') {
                SteerMode::Scale(number(v)?)
            } else {
                return Err(bad());
            };
            Ok(FeatureSteer {
                layer,
                feature,
                mode,
            })
        })
        .collect()
}

/// Writes a feature list as [`parse_steer_features`] reads it.
#[must_use]
pub fn format_steer_features(features: &[FeatureSteer]) -> String {
    features
        .iter()
        .map(|f| match f.mode {
            SteerMode::Clamp(v) => format!("{}/{}:c{v}", f.layer, f.feature),
            SteerMode::Scale(v) => format!("{}/{}:x{v}", f.layer, f.feature),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// What a supernode's label may not hold: the separators of [`format_supernodes`].
const LABEL_SEPARATORS: [char; 3] = [';', ':', ','];

/// The most supernodes a circuit link may carry.
pub const MAX_SUPERNODES: usize = 64;

/// The most members one supernode may have.
pub const MAX_SUPERNODE_MEMBERS: usize = 256;

/// A label as a link can hold it: separators dropped, spaces trimmed.
#[must_use]
pub fn clean_label(label: &str) -> String {
    label
        .chars()
        .filter(|c| !LABEL_SEPARATORS.contains(c))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Reads a supernode list; the error says which entry is wrong.
pub fn parse_supernodes(text: &str) -> Result<Vec<Supernode>, String> {
    let entries: Vec<&str> = text
        .split(';')
        .filter(|s| !s.trim().is_empty())
        .take(MAX_SUPERNODES + 1)
        .collect();
    if entries.len() > MAX_SUPERNODES {
        return Err(format!(
            "more than {MAX_SUPERNODES} supernodes; a graph holds at most {MAX_SUPERNODES}"
        ));
    }
    entries
        .into_iter()
        .map(|entry| {
            let bad = || {
                format!(
                    "`{entry}` is not a supernode: write label:id,id (e.g. say Atlanta:2_17_6,3_40_6)"
                )
            };
            let (label, members) = entry.split_once(':').ok_or_else(bad)?;
            let members: Vec<String> = members
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            if label.trim().is_empty() || members.is_empty() {
                return Err(bad());
            }
            if members.len() > MAX_SUPERNODE_MEMBERS {
                return Err(format!(
                    "supernode `{}` has {} members; at most {MAX_SUPERNODE_MEMBERS}",
                    label.trim(),
                    members.len()
                ));
            }
            Ok(Supernode {
                label: label.trim().to_owned(),
                members,
            })
        })
        .collect()
}

/// Writes a supernode list as [`parse_supernodes`] reads it.
#[must_use]
pub fn format_supernodes(supernodes: &[Supernode]) -> String {
    supernodes
        .iter()
        .filter(|s| !s.members.is_empty())
        .map(|s| format!("{}:{}", clean_label(&s.label), s.members.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

/// Reads a graph steering list; the error says which entry is wrong and how it should
/// look. Each node at most once.
pub fn parse_node_edits(text: &str) -> Result<Vec<NodeEdit>, String> {
    let entries: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(MAX_NODE_EDITS + 1)
        .collect();
    if entries.len() > MAX_NODE_EDITS {
        return Err(format!(
            "more than {MAX_NODE_EDITS} nodes set; graph steering sets at most \
             {MAX_NODE_EDITS}"
        ));
    }
    let mut edits: Vec<NodeEdit> = Vec::with_capacity(entries.len());
    for entry in entries {
        let wrong = || {
            format!(
                "{entry:?} is not a node to set: write layer_feature_position:value (e.g. \
                 0_2030_4:0 ablates feature 2030 of block 0 at token 4) or \
                 error_layer_position"
            )
        };
        let numbers = |text: &str| -> Option<Vec<usize>> {
            text.split('_').map(|n| n.parse().ok()).collect()
        };
        let edit = if let Some(rest) = entry.strip_prefix("error_") {
            match numbers(rest).as_deref() {
                Some(&[layer, position]) => NodeEdit::Error { layer, position },
                _ => return Err(wrong()),
            }
        } else {
            let (node, value) = entry.split_once(':').ok_or_else(wrong)?;
            let value = value
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(wrong)?;
            match numbers(node).as_deref() {
                Some(&[layer, feature, position]) => NodeEdit::Feature {
                    layer,
                    position,
                    feature,
                    value,
                },
                _ => return Err(wrong()),
            }
        };
        if edits.iter().any(|e| e.node() == edit.node()) {
            return Err(format!(
                "{entry:?} sets a node already set; set each node once"
            ));
        }
        edits.push(edit);
    }
    Ok(edits)
}

/// Writes a graph steering list as [`parse_node_edits`] reads it.
#[must_use]
pub fn format_node_edits(edits: &[NodeEdit]) -> String {
    edits
        .iter()
        .map(|edit| match *edit {
            NodeEdit::Feature {
                layer,
                position,
                feature,
                value,
            } => format!("{layer}_{feature}_{position}:{value}"),
            NodeEdit::Error { layer, position } => format!("error_{layer}_{position}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supernode_lists_round_trip() {
        let groups = parse_supernodes("say Atlanta:2_17_6, 3_40_6;city:1_3_5").unwrap_or_default();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].label, "say Atlanta");
        assert_eq!(groups[0].members, ["2_17_6", "3_40_6"]);
        assert_eq!(parse_supernodes(&format_supernodes(&groups)), Ok(groups));
        assert_eq!(parse_supernodes(""), Ok(Vec::new()));
        assert_eq!(clean_label(" a;b:c,d "), "abcd");
        for bad in ["no members:", ":1_2_3", "nocolon"] {
            let error = parse_supernodes(bad).err().unwrap_or_default();
            assert!(error.contains(bad), "{bad}: {error}");
        }
        let many = (0..65)
            .map(|i| format!("g{i}:1_2_3"))
            .collect::<Vec<_>>()
            .join(";");
        let error = parse_supernodes(&many).err().unwrap_or_default();
        assert!(error.contains("more than 64 supernodes"), "{error}");
        let crowd = (0..257)
            .map(|i| format!("1_{i}_0"))
            .collect::<Vec<_>>()
            .join(",");
        let error = parse_supernodes(&format!("big:{crowd}"))
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("`big` has 257 members; at most 256"),
            "{error}"
        );
        let steered = (0..65)
            .map(|i| format!("0/{i}:x0"))
            .collect::<Vec<_>>()
            .join(",");
        let error = parse_steer_features(&steered).err().unwrap_or_default();
        assert!(error.contains("more than 64 steered features"), "{error}");
        assert!(parse_steer_features(&steered[..steered.rfind(',').unwrap_or(0)]).is_ok());
    }

    #[test]
    fn feature_lists_round_trip() {
        let features = parse_steer_features("1/3:c20, 2/5:x0,0/7:x-1.5").unwrap_or_default();
        assert_eq!(features.len(), 3);
        assert_eq!(features[0].mode, SteerMode::Clamp(20.0));
        assert_eq!(features[1].mode, SteerMode::Scale(0.0));
        assert_eq!(
            parse_steer_features(&format_steer_features(&features)).unwrap_or_default(),
            features
        );
        assert_eq!(parse_steer_features("").map(|f| f.len()), Ok(0));
    }

    #[test]
    fn malformed_lists_say_what_is_wrong() {
        for bad in ["1-3:c2", "1/3", "1/3:z2", "a/3:c2", "1/3:cNaN", "1/3:c"] {
            let error = parse_steer_features(bad).err().unwrap_or_default();
            assert!(error.contains(bad), "{bad}: {error}");
        }
    }

    #[test]
    fn graph_steering_lists_round_trip_and_bad_entries_are_named() {
        let text = "0_2030_4:0, 1_7_2:2.5,error_3_5";
        let edits = parse_node_edits(text).unwrap();
        assert_eq!(
            edits,
            vec![
                NodeEdit::Feature {
                    layer: 0,
                    position: 4,
                    feature: 2030,
                    value: 0.0
                },
                NodeEdit::Feature {
                    layer: 1,
                    position: 2,
                    feature: 7,
                    value: 2.5
                },
                NodeEdit::Error {
                    layer: 3,
                    position: 5
                },
            ]
        );
        assert_eq!(parse_node_edits(&format_node_edits(&edits)).unwrap(), edits);
        assert_eq!(parse_node_edits("").unwrap(), vec![]);
        for (bad, expected) in [
            ("0_2030_4", "not a node to set"),
            ("0_2030:1", "not a node to set"),
            ("0_2030_4:NaN", "not a node to set"),
            ("0_2030_4:inf", "not a node to set"),
            ("error_3", "not a node to set"),
            ("E_12_1:0", "not a node to set"),
            ("0_1_2:0,0_1_2:3", "already set"),
            ("error_1_2,error_1_2", "already set"),
        ] {
            let message = parse_node_edits(bad).unwrap_err();
            assert!(message.contains(expected), "{bad}: {message}");
        }
        let many = (0..=MAX_NODE_EDITS)
            .map(|i| format!("0_{i}_0:0"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_node_edits(&many).unwrap_err().contains("at most 64"));
    }
}
