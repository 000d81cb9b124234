//! Attribute lists (RFC 8216bis §4.2), read in place.

use crate::Truncation;
use crate::scan::find_byte;

/// One `NAME=value` pair of an attribute list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    /// The AttributeName, as written.
    pub name: &'a str,
    /// The AttributeValue without the quotes of a quoted-string.
    pub value: &'a str,
    /// Byte offset of `value` in the whole input.
    pub start: usize,
}

/// Iterates over the attributes of an attribute list without allocating.
///
/// Lenient where that is harmless (a name without `=` gets an empty
/// value; bytes between a closing quote and the next comma are ignored),
/// strict where a cut-off playlist shows: a quoted-string without its
/// closing quote ends the iteration with [`Truncation::UnterminatedQuote`].
pub(crate) struct AttrList<'a> {
    text: &'a str,
    /// Offset of `text` in the whole input.
    base: usize,
    pos: usize,
}

impl<'a> AttrList<'a> {
    /// `text` is the line after `TAG:` (without the line terminator), and
    /// `base` its byte offset in the input.
    pub(crate) fn new(text: &'a str, base: usize) -> Self {
        Self { text, base, pos: 0 }
    }
}

impl<'a> Iterator for AttrList<'a> {
    type Item = Result<Attr<'a>, Truncation>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.text;
        let len = text.len();
        if self.pos >= len {
            return None;
        }
        let bytes = text.as_bytes();
        let name_start = self.pos;
        let mut i = name_start;
        while i < len && bytes[i] != b'=' && bytes[i] != b',' {
            i += 1;
        }
        let name = &text[name_start..i];
        if i == len || bytes[i] == b',' {
            self.pos = (i + 1).min(len);
            return Some(Ok(Attr {
                name,
                value: "",
                start: self.base + i,
            }));
        }
        let value_start = i + 1;
        let (value_range, after) = if bytes.get(value_start) == Some(&b'"') {
            let quoted = value_start + 1;
            let Some(close) = find_byte(bytes, quoted, len, b'"') else {
                self.pos = len;
                return Some(Err(Truncation::UnterminatedQuote));
            };
            (quoted..close, close + 1)
        } else {
            let end = find_byte(bytes, value_start, len, b',').unwrap_or(len);
            (value_start..end, end)
        };
        // Normally a comma right after the value; tolerate junk before it.
        self.pos = match bytes.get(after) {
            None => len,
            Some(b',') => after + 1,
            Some(_) => find_byte(bytes, after, len, b',').map_or(len, |comma| comma + 1),
        };
        Some(Ok(Attr {
            name,
            value: &text[value_range.clone()],
            start: self.base + value_range.start,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Result<Vec<(&str, &str, usize)>, Truncation> {
        AttrList::new(text, 100)
            .map(|a| a.map(|a| (a.name, a.value, a.start)))
            .collect()
    }

    #[test]
    fn quoted_and_unquoted_values() {
        let text = r#"DURATION=0.2,URI="p,1.m4s",INDEPENDENT=YES"#;
        assert_eq!(
            collect(text).unwrap(),
            [
                ("DURATION", "0.2", 109),
                ("URI", "p,1.m4s", 118),
                ("INDEPENDENT", "YES", 139),
            ]
        );
        assert_eq!(&text[18..25], "p,1.m4s");
    }

    #[test]
    fn lenient_shapes() {
        assert_eq!(collect("").unwrap(), []);
        assert_eq!(collect("A=1,").unwrap(), [("A", "1", 102)]);
        assert_eq!(
            collect("FLAG,B=2").unwrap(),
            [("FLAG", "", 104), ("B", "2", 107)]
        );
        assert_eq!(
            collect(r#"A="x"junk,B="#).unwrap(),
            [("A", "x", 103), ("B", "", 112)]
        );
        assert_eq!(collect(r#"A="""#).unwrap(), [("A", "", 103)]);
    }

    #[test]
    fn unterminated_quote_is_truncation() {
        assert_eq!(collect(r#"URI="seg"#), Err(Truncation::UnterminatedQuote));
        assert_eq!(collect(r#"A=1,URI=""#), Err(Truncation::UnterminatedQuote));
        let mut list = AttrList::new(r#"A=1,B="x"#, 0);
        assert!(list.next().unwrap().is_ok());
        assert!(list.next().unwrap().is_err());
        assert!(list.next().is_none(), "fused after the error");
    }
}
