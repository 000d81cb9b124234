//! A tiny ISOBMFF box walker, independent of the writer, for the tests.

/// One box in a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct Atom<'a> {
    /// The four-character type.
    pub kind: [u8; 4],
    /// Offset of the box header within the slice it was read from.
    pub offset: usize,
    /// The box payload (after the size/type/largesize header).
    pub body: &'a [u8],
}

/// Splits `data` into consecutive boxes, panicking on malformed sizes.
pub fn atoms(data: &[u8]) -> Vec<Atom<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        assert!(data.len() - at >= 8, "truncated box header at {at}");
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap();
        let (header, size) = match size32 {
            0 => (8, data.len() - at),
            1 => {
                let large = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
                (16, usize::try_from(large).unwrap())
            }
            n => (8, n as usize),
        };
        assert!(
            size >= header && at + size <= data.len(),
            "box {:?} at {at}: size {size} out of bounds",
            String::from_utf8_lossy(&kind)
        );
        out.push(Atom {
            kind,
            offset: at,
            body: &data[at + header..at + size],
        });
        at += size;
    }
    out
}

/// The only child of type `kind` in `data`, panicking if there is not
/// exactly one.
pub fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Atom<'a> {
    let found: Vec<Atom<'a>> = atoms(data)
        .into_iter()
        .filter(|a| &a.kind == kind)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {:?} box",
        String::from_utf8_lossy(kind)
    );
    found[0]
}

/// Descends through `path` of (container) boxes, returning the last one.
pub fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Atom<'a> {
    let (first, rest) = path.split_first().expect("non-empty path");
    let mut atom = child(data, first);
    for kind in rest {
        atom = child(atom.body, kind);
    }
    atom
}
