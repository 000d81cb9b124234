//! Truncated, garbage and oversized inputs, and unsafe options, are
//! refused with a reason, and the output buffer is left untouched.

use livestack_manifest::{
    BaseRewrite, Malformation, ManifestError, RewriteOptions, Truncation, rewrite, rewrite_into,
};

fn token() -> RewriteOptions {
    RewriteOptions {
        token_query: Some("token=abc".into()),
        ..RewriteOptions::default()
    }
}

#[test]
fn not_a_playlist() {
    for input in [
        "",
        "\n",
        "<html>502 Bad Gateway</html>\n",
        "#EXTINF:4,\nseg.m4s\n",
        " #EXTM3U\n",
        "#EXTM3U8\n",
        "#extm3u\n",
        "\u{feff}\u{feff}#EXTM3U\n",
        "{\"error\":\"nope\"}",
    ] {
        assert_eq!(
            rewrite(input, &token()),
            Err(ManifestError::NotAPlaylist),
            "{input:?}"
        );
    }
}

#[test]
fn truncated() {
    let table: [(&str, usize, Truncation); 7] = [
        ("#EXTM3U", 1, Truncation::MissingLineTerminator),
        (
            "#EXTM3U\n#EXTINF:4,\nseg12.m",
            3,
            Truncation::MissingLineTerminator,
        ),
        (
            "#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r",
            2,
            Truncation::MissingLineTerminator,
        ),
        (
            "#EXTM3U\n#EXT-X-PART:DURATION=0.2,URI=\"part1.\n",
            2,
            Truncation::UnterminatedQuote,
        ),
        (
            "#EXTM3U\n#EXT-X-PART:DURATION=0.2,URI=\"p.m4s\",BYTERANGE=\"1\n",
            2,
            Truncation::UnterminatedQuote,
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1\n",
            2,
            Truncation::UnterminatedQuote,
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n\n",
            2,
            Truncation::MissingVariantUri,
        ),
    ];
    for (input, line, reason) in table {
        assert_eq!(
            rewrite(input, &token()),
            Err(ManifestError::Truncated { line, reason }),
            "{input:?}"
        );
    }
}

#[test]
fn malformed() {
    let table: [(&str, usize, Malformation); 4] = [
        ("#EXTM3U\nseg\0.m4s\n", 2, Malformation::ControlCharacter),
        (
            "#EXTM3U\nseg1.m4s\rseg2.m4s\n",
            2,
            Malformation::ControlCharacter,
        ),
        (
            "#EXTM3U\n#EXT-X-MAP:URI=\"a\tb\"\n",
            2,
            Malformation::ControlCharacter,
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n",
            3,
            Malformation::VariantWithoutUri,
        ),
    ];
    for (input, line, reason) in table {
        assert_eq!(
            rewrite(input, &token()),
            Err(ManifestError::Malformed { line, reason }),
            "{input:?}"
        );
    }
}

#[test]
fn too_large_is_refused_before_any_work() {
    let opts = RewriteOptions {
        max_input_bytes: 16,
        ..token()
    };
    assert_eq!(
        rewrite("#EXTM3U\n#EXT-X-VERSION:9\n", &opts),
        Err(ManifestError::TooLarge { len: 25, max: 16 })
    );
    assert!(rewrite("#EXTM3U\nseg.m4s\n", &opts).is_ok());
    let huge = format!("#EXTM3U\n{}", "#EXTINF:4,\nseg.m4s\n".repeat(60_000));
    assert!(huge.len() > livestack_manifest::DEFAULT_MAX_INPUT_BYTES);
    assert!(matches!(
        rewrite(&huge, &token()),
        Err(ManifestError::TooLarge { .. })
    ));
}

#[test]
fn unsafe_options_are_refused() {
    let bad_tokens = [
        "",
        "?token=a",
        "&token=a",
        "t=\"x",
        "t=a b",
        "t=a#b",
        "t=a\r\n#EXT-X-ENDLIST",
    ];
    for bad in bad_tokens {
        let opts = RewriteOptions {
            token_query: Some(bad.into()),
            ..RewriteOptions::default()
        };
        assert!(
            matches!(
                rewrite("#EXTM3U\n", &opts),
                Err(ManifestError::InvalidOptions(_))
            ),
            "{bad:?}"
        );
    }
    for (from, to) in [
        ("", "x"),
        ("http://o/", "https://e/\""),
        ("http://o/?", "x"),
        ("http://o/", "a b"),
    ] {
        let opts = RewriteOptions {
            base: Some(BaseRewrite {
                from: from.into(),
                to: to.into(),
            }),
            ..RewriteOptions::default()
        };
        assert!(
            matches!(
                rewrite("#EXTM3U\n", &opts),
                Err(ManifestError::InvalidOptions(_))
            ),
            "{from:?} {to:?}"
        );
    }
}

#[test]
fn errors_leave_the_buffer_as_it_was() {
    let mut buf = String::from("kept");
    let input = "#EXTM3U\nseg1.m4s\n#EXTINF:4,\nseg2.m";
    assert!(rewrite_into(input, &token(), &mut buf).is_err());
    assert_eq!(buf, "kept");
}

#[test]
fn garbage_never_panics() {
    // Every prefix of a real playlist and a few byte soups: an Ok or an
    // Err, never a panic, and never a token inside a cut-off URI.
    let input = include_str!("data/ll-hls-media.m3u8");
    for end in (0..=input.len()).filter(|&i| input.is_char_boundary(i)) {
        let prefix = &input[..end];
        if let Ok(out) = rewrite(prefix, &token()) {
            assert!(prefix.ends_with('\n'), "{end}");
            assert!(out.len() >= prefix.len());
        }
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let alphabet = b"#EXT-X-PART:URI=\",\r\n?&a0 \t";
    for _ in 0..2_000 {
        let mut soup = String::from("#EXTM3U\n");
        for _ in 0..64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            soup.push(char::from(
                alphabet[(state % alphabet.len() as u64) as usize],
            ));
        }
        let _ = rewrite(&soup, &token());
    }
}
