//! "Every byte outside a rewritten URI is preserved", checked on random
//! playlists: removing the appended token from the output gives the input
//! back exactly, and each URI got exactly one token.

use livestack_manifest::{RewriteOptions, rewrite};

/// xorshift64*: a fixed-seed generator so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOKEN: &str = "tok=Z9-._~%2F";

/// A random relative URI and what it must become.
fn uri(rng: &mut Rng) -> (String, String) {
    let path = rng.pick(&[
        "seg1.m4s",
        "a/b/part9.2.mp4",
        "../x.m3u8",
        "/abs/y.ts",
        "é.m4s",
    ]);
    let query = rng.pick(&["", "?", "?a=1", "?a=1&", "?a=1&b=%20"]);
    let fragment = rng.pick(&["", "#t=1", "#f?x&y"]);
    let sep = match query {
        "" => "?",
        q if q.ends_with(['?', '&']) => "",
        _ => "&",
    };
    (
        format!("{path}{query}{fragment}"),
        format!("{path}{query}{sep}{TOKEN}{fragment}"),
    )
}

/// Returns (input, expected output, number of URIs).
fn playlist(rng: &mut Rng) -> (String, String, usize) {
    let mut input = String::from(rng.pick(&["", "\u{feff}"]));
    input.push_str("#EXTM3U");
    let mut want = input.clone();
    let mut uris = 0;
    let lines = 1 + rng.below(60);
    for i in 0..=lines {
        let eol = rng.pick(&["\n", "\r\n"]);
        if i == 0 {
            input.push_str(eol);
            want.push_str(eol);
            continue;
        }
        let (line_in, line_want) = match rng.below(9) {
            0 => {
                let (u, w) = uri(rng);
                let pad = rng.pick(&["", " ", "\t "]);
                (format!("{pad}{u}{pad}"), format!("{pad}{w}{pad}"))
            }
            1 => {
                let (u, w) = uri(rng);
                let tag = rng.pick(&[
                    "EXT-X-PART:DURATION=0.2,URI=",
                    "EXT-X-MAP:URI=",
                    "EXT-X-PRELOAD-HINT:TYPE=PART,URI=",
                    "EXT-X-RENDITION-REPORT:URI=",
                    "EXT-X-KEY:METHOD=AES-128,URI=",
                    "EXT-X-MEDIA:TYPE=AUDIO,NAME=\"a,b\",URI=",
                    "EXT-X-SESSION-DATA:DATA-ID=\"x\",URI=",
                    "EXT-X-CONTENT-STEERING:SERVER-URI=",
                    "EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=",
                ]);
                let tail = rng.pick(&["", ",INDEPENDENT=YES", ",X=\"q,URI=no\",Y=1"]);
                (
                    format!("#{tag}\"{u}\"{tail}"),
                    format!("#{tag}\"{w}\"{tail}"),
                )
            }
            2 => {
                let same = rng
                    .pick(&[
                        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://k\"",
                        "#EXT-X-KEY:METHOD=AES-128,URI=\"data:text/plain;base64,AAAA\"",
                        "#EXT-X-DATERANGE:ID=\"i\",X-ASSET-URI=\"a.m3u8\"",
                        "#EXT-X-UNKNOWN-TAG:URI=\"u.m4s\"",
                        "#EXT-X-CONTENT-STEERING:PATHWAY-ID=\"A\"",
                        "#EXT-X-MAP:URI=\"\"",
                    ])
                    .to_owned();
                (same.clone(), same)
            }
            3 => {
                let same = rng
                    .pick(&[
                        "",
                        " ",
                        "\t",
                        "# a comment ?token=",
                        "#EXTINF:4.0,title \"q",
                    ])
                    .to_owned();
                (same.clone(), same)
            }
            _ => {
                let same = rng
                    .pick(&[
                        "#EXTINF:4.00000,",
                        "#EXT-X-SKIP:SKIPPED-SEGMENTS=3",
                        "#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000Z",
                        "#EXT-X-GAP",
                        "#EXT-X-TARGETDURATION:4",
                    ])
                    .to_owned();
                (same.clone(), same)
            }
        };
        if line_in != line_want {
            uris += 1;
        }
        input.push_str(&line_in);
        input.push_str(eol);
        want.push_str(&line_want);
        want.push_str(eol);
    }
    (input, want, uris)
}

/// Checks that `output` is `input` with only `[?&]TOKEN` insertions and
/// returns how many: walks both, skipping an inserted token (and the
/// separator right before it) in the output.
fn only_insertions(input: &str, output: &str) -> Result<usize, String> {
    let (input, output) = (input.as_bytes(), output.as_bytes());
    let (mut i, mut o, mut inserted) = (0, 0, 0);
    while o < output.len() {
        let rest = &output[o..];
        if rest.starts_with(TOKEN.as_bytes()) {
            o += TOKEN.len();
            inserted += 1;
        } else if i < input.len() && input[i] == output[o] {
            i += 1;
            o += 1;
        } else if matches!(output[o], b'?' | b'&') && rest[1..].starts_with(TOKEN.as_bytes()) {
            o += 1;
        } else {
            return Err(format!("byte {i} of the input changed"));
        }
    }
    if i != input.len() {
        return Err(format!("input bytes from {i} are missing"));
    }
    Ok(inserted)
}

#[test]
fn random_playlists_keep_every_byte_outside_uris() {
    let opts = RewriteOptions {
        token_query: Some(TOKEN.into()),
        ..RewriteOptions::default()
    };
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut total_uris = 0;
    for case in 0..2_000 {
        let (input, want, uris) = playlist(&mut rng);
        let got = rewrite(&input, &opts).unwrap_or_else(|e| panic!("case {case}: {e}\n{input}"));
        assert_eq!(got, want, "case {case}");
        // The invariant itself, independent of `want`.
        assert_eq!(only_insertions(&input, &got), Ok(uris), "case {case}");
        // Without options the output is the input.
        assert_eq!(rewrite(&input, &RewriteOptions::default()).unwrap(), input);
        total_uris += uris;
    }
    assert!(
        total_uris > 10_000,
        "the generator produced URIs: {total_uris}"
    );
}
