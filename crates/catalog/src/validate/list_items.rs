//! List values (`8080,5432/tcp`): each item checked by the manifest's `validation.items`, so
//! the form and `--set` refuse what the installer would refuse on the server.

use super::input_values::{check_value, describe_rules};
use crate::manifest::{InputSpec, ItemRules};

/// The item rules in words, for hints (none when the manifest's `message` says it).
pub(super) fn describe_items(input: &InputSpec, items: &ItemRules) -> Option<String> {
    let mut each = describe_rules(&item_spec(input, items));
    if let Some(p) = &items.protocols {
        each.push(format!("optionally /{}", p.join(" or /")));
    }
    (!each.is_empty()).then(|| {
        format!(
            "a list separated by {:?}, each item {}",
            items.separator,
            each.join(", ")
        )
    })
}

/// The input as one of its items: the item's type and rules, the input's sensitivity.
fn item_spec(input: &InputSpec, items: &ItemRules) -> InputSpec {
    let mut spec = input.clone();
    spec.kind = items.item_kind();
    spec.validation = Some(items.validation());
    spec.visible_if = None;
    spec
}

/// Each item of a list value against the item rules; an empty value is an empty list.
pub(super) fn check_items(input: &InputSpec, items: &ItemRules, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Ok(());
    }
    let spec = item_spec(input, items);
    let sep = if items.separator.is_empty() {
        ","
    } else {
        items.separator.as_str()
    };
    for (i, raw) in value.split(sep).enumerate() {
        let item = raw.trim();
        if item.is_empty() {
            return Err(format!("item {} is empty", i + 1));
        }
        let shown = if input.is_sensitive() {
            format!("item {}", i + 1)
        } else {
            format!("item {} {item:?}", i + 1)
        };
        // `8080/tcp`: the protocol is checked here, the port by the item's type.
        let bare = match (&items.protocols, item.split_once('/')) {
            (Some(allowed), Some((n, proto))) => {
                if !allowed.iter().any(|p| p == proto) {
                    return Err(format!(
                        "{shown}: the protocol after / must be {}",
                        allowed.join(" or ")
                    ));
                }
                n
            }
            _ => item,
        };
        check_value(&spec, bare).map_err(|e| format!("{shown} {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::InputType;
    use crate::validate::input_values::{check_value, describe_rules};

    fn ports_input(message: Option<&str>) -> InputSpec {
        let yaml = "name: extra_ports\ntype: string\n";
        let mut spec: InputSpec = yaml_serde::from_str(yaml).expect("spec");
        spec.validation = Some(crate::manifest::Validation {
            message: message.map(str::to_string),
            items: Some(ItemRules {
                separator: ",".into(),
                kind: Some(InputType::Port),
                protocols: Some(vec!["tcp".into(), "udp".into()]),
                ..Default::default()
            }),
            ..Default::default()
        });
        spec
    }

    #[test]
    fn every_item_of_a_list_is_checked_as_the_installer_checks_it() {
        let p = ports_input(None);
        for ok in ["", "8080", "8080, 5432/tcp,51820/udp", "1,65535"] {
            assert_eq!(check_value(&p, ok), Ok(()), "{ok:?}");
        }
        let err = |v: &str| check_value(&p, v).expect_err(v);
        assert!(
            err("8080,99999").starts_with("item 2 \"99999\" must be a port"),
            "{}",
            err("8080,99999")
        );
        assert!(err("80/sctp").contains("the protocol after / must be tcp or udp"));
        assert!(err("80,,81").contains("item 2 is empty"));
        assert!(err("http").contains("must be a whole number"));
        let rules = describe_rules(&p).join("; ");
        assert!(
            rules.contains("each item a port 1-65535, optionally /tcp or /udp"),
            "{rules}"
        );
    }

    #[test]
    fn a_manifest_message_replaces_the_regex_in_errors_and_hints() {
        let mut p = ports_input(Some("ports like 8080 or 51820/udp, separated by commas."));
        assert_eq!(
            check_value(&p, "8080,0").expect_err("port 0"),
            "item 2 \"0\" must be a port between 1 and 65535, got 0; expected ports like 8080 or 51820/udp, separated by commas"
        );
        if let Some(v) = &mut p.validation {
            v.items = None;
            v.pattern = Some("[0-9,]+".into());
        }
        assert_eq!(
            check_value(&p, "x").expect_err("pattern"),
            "ports like 8080 or 51820/udp, separated by commas."
        );
        let rules = describe_rules(&p).join("; ");
        assert!(
            !rules.contains("[0-9,]+"),
            "the regex stays out of the hint: {rules}"
        );
    }
}
