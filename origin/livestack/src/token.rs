//! `livestack token mint|verify`: operator tools for viewer tokens, with
//! the edge's key configuration ([`KeyArgs`]).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};

use crate::edge::KeyArgs;

/// `livestack token` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Mint a token for a stream and print it on stdout.
    Mint {
        /// The broadcast NAME (of live/NAME).
        #[arg(long)]
        stream: String,
        /// Lifetime, e.g. 60s or 2h.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Token format.
        #[arg(long, value_enum, default_value_t = Format::Cat)]
        format: Format,
        /// What the token grants.
        #[arg(long, value_enum, default_value_t = AccessArg::Play)]
        access: AccessArg,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Verify a token and print its claims; exits non-zero if refused.
    Verify {
        /// The token.
        token: String,
        /// The request URL to check it against (CAT `catu`), e.g.
        /// `https://edge.example/live/cam1/index.m3u8`.
        #[arg(long)]
        url: Option<String>,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

/// A token format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// CTA-5007 Common Access Token (COSE_Mac0, HS256).
    Cat,
    /// JWT (ES256 or EdDSA, as the keys allow; HS256 otherwise).
    Jwt,
}

/// What a minted token grants.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AccessArg {
    /// Watch (LL-HLS, WHEP).
    Play,
    /// Publish (WHIP).
    Publish,
}

/// Runs `livestack token ...`.
pub(crate) fn run(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Mint {
            stream,
            ttl,
            format,
            access,
            keys,
        } => {
            let (_, keys) = keys.resolve()?;
            println!("{}", mint(&keys, &stream, ttl, format, access)?);
        }
        TokenCommand::Verify { token, url, keys } => {
            let (_, keys) = keys.resolve()?;
            let keys: livestack_tokens::KeySet = keys.parse().context("invalid token keys")?;
            let mut opts = livestack_tokens::VerifyOptions::new(now_unix());
            if let Some(u) = &url {
                opts.url = Some(
                    livestack_tokens::RequestUrl::parse(u)
                        .map_err(|e| anyhow::anyhow!("invalid --url: {e}"))?,
                );
            }
            match livestack_tokens::verify(&token, &keys, &opts) {
                Ok(v) => println!("valid {:?} token (kid {}): {:#?}", v.kind, v.kid, v.claims),
                Err(e) => bail!("token refused: {e}"),
            }
        }
    }
    Ok(())
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_id() -> Result<Vec<u8>> {
    let mut id = vec![0u8; 16];
    getrandom::fill(&mut id).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
    Ok(id)
}

/// A token for `stream` signed with `keys` (the key-config format), valid
/// `ttl` from now.
pub(crate) fn mint(
    keys: &str,
    stream: &str,
    ttl: Duration,
    format: Format,
    access: AccessArg,
) -> Result<String> {
    use livestack_tokens::{Access, KeySet, MintRequest};
    let keys: KeySet = keys.parse().context("invalid token keys")?;
    let access = match access {
        AccessArg::Play => Access::Play,
        AccessArg::Publish => Access::Publish,
    };
    let req = MintRequest::for_stream(stream, access, now_unix(), ttl.as_secs(), random_id()?)
        .context("invalid mint request")?;
    Ok(match format {
        Format::Cat => livestack_tokens::mint_cat(&req, &keys)?,
        Format::Jwt => livestack_tokens::mint_jwt(&req.without_cat_claims(), &keys)?,
    })
}
