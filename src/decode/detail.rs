//! The field-level detail tree shown by `records -V`, the JSON output and the
//! UI's details pane: names and values a person can read, like Wireshark's
//! packet details.

use serde::Serialize;

/// One node of the detail tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Field>,
}

impl Field {
    pub fn new(name: impl Into<String>, value: impl ToString) -> Self {
        Field {
            name: name.into(),
            value: value.to_string(),
            children: Vec::new(),
        }
    }

    pub fn with_children(mut self, children: Vec<Field>) -> Self {
        self.children = children;
        self
    }

    /// Writes the tree indented, one field per line.
    pub fn write_tree(fields: &[Field], indent: usize, out: &mut String) {
        for f in fields {
            for _ in 0..indent {
                out.push_str("    ");
            }
            out.push_str(&f.name);
            if !f.value.is_empty() {
                out.push_str(": ");
                out.push_str(&f.value);
            }
            out.push('\n');
            Field::write_tree(&f.children, indent + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_is_indented() {
        let t = vec![Field::new("a", 1).with_children(vec![Field::new("b", "x")])];
        let mut s = String::new();
        Field::write_tree(&t, 0, &mut s);
        assert_eq!(s, "a: 1\n    b: x\n");
    }
}
