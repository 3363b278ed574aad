//! `natrix jwt`: operator mode's tool. It makes and edits operators,
//! accounts and users in an nsc store (see [`store`]), issues users and
//! their `.creds`, describes any JWT, creds file or nkey, pushes account
//! JWTs to a running server's resolver and lints a store.
//!
//! Layers: [`args`] (the declared flags of each command, parsing and
//! help) → the commands ([`make`]: init, add, issue, creds; [`edit`]:
//! edit, exports, imports, activations; [`describe`]; [`push`]; [`lint`])
//! → [`claims`] (defaults and flag edits of the `nats` object) and
//! [`store`] (files and keys) → `security::jwt` (decode, encode, creds
//! frames). Commands print what they made on stdout and notes on stderr,
//! so `natrix jwt init > server.conf` gives a runnable config.
//!
//! Exit status: 0 done, 1 failed (the message names the flag, file and
//! cause), 2 bad command line.

pub mod args;
pub mod claims;
pub mod describe;
pub mod edit;
pub mod lint;
pub mod make;
pub mod push;
pub mod store;

use std::process::ExitCode;

use nkeys::KeyPair;

use args::{CliError, Command};
use store::{Entity, Store};

const HELP: &str = "\
Operator-mode JWTs: operators, accounts, users, creds (an nsc-compatible store)

Usage: natrix jwt <COMMAND> [OPTIONS]

Commands:
  init                 make an operator, its system account and user; print a server config
  add operator         add an operator to the store
  add account          add an account to an operator
  add user             add a user to an account (JWT, key and creds)
  add export           export a stream or service from an account
  add import           import another account's export
  issue                mint a user JWT and its creds in one line
  edit operator        change an operator (signing keys, system account, expiry)
  edit account         change an account (limits, signing keys, revocations, ...)
  edit user            change a user (permissions, limits, bearer, src, times, expiry)
  edit signing-key     scope an account signing key with a user template (role)
  generate activation  make an activation token for a private export
  generate config      print a server config for the store (resolver preloads)
  creds                write a user's .creds file (mode 0600)
  describe             show a JWT, creds file or nkey (never a seed without --show-seed)
  push                 send account JWTs to a server's resolver ($SYS.REQ.CLAIMS.UPDATE)
  lint                 find mistakes in a store

The store: $NSC_HOME (JWTs, default ~/.local/share/nats/nsc/stores) and
$NKEYS_PATH (seeds and creds, default ~/.local/share/nats/nsc/keys).
Run natrix jwt <COMMAND> --help for a command's options.
";

/// What every command works with.
pub struct Ctx {
    pub store: Store,
    /// Unix seconds, read once per run.
    pub now: i64,
}

type Run = fn(&Ctx, &args::Parsed) -> Result<(), CliError>;

fn commands() -> Vec<(&'static Command, Run)> {
    vec![
        (&make::INIT, make::init),
        (&make::ADD_OPERATOR, make::add_operator),
        (&make::ADD_ACCOUNT, make::add_account),
        (&make::ADD_USER, make::add_user),
        (&make::ISSUE, make::issue),
        (&make::CREDS, make::creds),
        (&make::GENERATE_CONFIG, make::generate_config),
        (&edit::EDIT_OPERATOR, edit::edit_operator),
        (&edit::EDIT_ACCOUNT, edit::edit_account),
        (&edit::EDIT_USER, edit::edit_user),
        (&edit::EDIT_SIGNING_KEY, edit::edit_signing_key),
        (&edit::ADD_EXPORT, edit::add_export),
        (&edit::ADD_IMPORT, edit::add_import),
        (&edit::GENERATE_ACTIVATION, edit::generate_activation),
        (&describe::DESCRIBE, describe::describe),
        (&push::PUSH, push::push),
        (&lint::LINT, lint::lint),
    ]
}

/// Entry point for `natrix jwt ARGS`.
pub fn run(argv: &[String]) -> ExitCode {
    if argv.is_empty() || matches!(argv[0].as_str(), "-h" | "--help" | "help") {
        print!("{HELP}");
        return if argv.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    // The longest command path the words start with ("add user" before
    // "add").
    let table = commands();
    let found = table.iter().find_map(|(cmd, run)| {
        let words: Vec<&str> = cmd.path.split(' ').skip(1).collect();
        (argv.len() >= words.len() && argv.iter().zip(&words).all(|(a, w)| a == w)).then_some((
            *cmd,
            *run,
            words.len(),
        ))
    });
    let Some((cmd, run, used)) = found else {
        eprintln!(
            "natrix jwt: unknown command {:?}\n\n{HELP}",
            argv.iter().take(2).cloned().collect::<Vec<_>>().join(" ")
        );
        return ExitCode::from(2);
    };
    let result = cmd.parse(&argv[used..]).and_then(|p| {
        let ctx = Ctx {
            store: Store::from_env(),
            now: crate::security::operator::now(),
        };
        run(&ctx, &p)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Help(h)) => {
            print!("{h}");
            ExitCode::SUCCESS
        }
        Err(CliError::Usage(m)) => {
            eprintln!("{m}");
            ExitCode::from(2)
        }
        Err(CliError::Failed(m)) => {
            eprintln!("natrix {}: {m}", cmd.path);
            ExitCode::from(1)
        }
    }
}

impl Ctx {
    /// The key pair for `value` given to `flag`: a public key whose seed
    /// is in the key store, a seed, or a file holding a seed. `prefix` is
    /// the kind of key wanted (`O`, `A`).
    pub fn key_for(&self, flag: &str, value: &str, prefix: char) -> Result<KeyPair, String> {
        let kp = if value.starts_with('S') && value.len() > 50 && !value.contains('/') {
            KeyPair::from_seed(value).map_err(|e| format!("--{flag}: not a valid seed: {e}"))?
        } else if std::path::Path::new(value).is_file() {
            store::read_seed_file(std::path::Path::new(value))
                .map_err(|e| format!("--{flag}: {e}"))?
        } else if nkeys::KeyPair::from_public_key(value).is_ok() {
            self.store
                .load_key(value)
                .map_err(|e| format!("--{flag}: {e}"))?
        } else {
            return Err(format!(
                "--{flag} {value:?}: not a name in the store, a public key, a seed or a seed file"
            ));
        };
        if !kp.public_key().starts_with(prefix) {
            return Err(format!(
                "--{flag}: {} is not a{} key",
                kp.public_key(),
                match prefix {
                    'O' => "n operator",
                    'A' => "n account",
                    _ => " user",
                }
            ));
        }
        Ok(kp)
    }

    /// The operator key or operator signing key that signs accounts:
    /// `--issuer` (a key) or the operator's own key.
    pub fn operator_signer(&self, op: &Entity, issuer: Option<&str>) -> Result<KeyPair, String> {
        let oc: crate::security::jwt::OperatorClaims =
            op.claims.typed().map_err(|e| e.to_string())?;
        match issuer {
            None if oc.strict_signing_key_usage => {
                let sk = oc
                    .signing_keys
                    .0
                    .iter()
                    .find(|k| self.store.has_key(k))
                    .ok_or_else(|| {
                        format!(
                            "operator {} requires signing keys, and none of their seeds is in the key store: pass --issuer",
                            op.name
                        )
                    })?;
                self.store.load_key(sk)
            }
            None => self.store.load_key(&op.claims.sub),
            Some(v) if v == op.name => self.store.load_key(&op.claims.sub),
            Some(v) => {
                let kp = self.key_for("issuer", v, 'O')?;
                if !oc.signed_by(&op.claims.sub, &kp.public_key()) {
                    return Err(format!(
                        "--issuer {}: neither operator {} nor one of its signing keys",
                        kp.public_key(),
                        op.name
                    ));
                }
                Ok(kp)
            }
        }
    }

    /// The account key or account signing key that signs users.
    pub fn account_signer(&self, acc: &Entity, issuer: Option<&str>) -> Result<KeyPair, String> {
        let ac: crate::security::jwt::AccountClaims =
            acc.claims.typed().map_err(|e| e.to_string())?;
        match issuer {
            None => self.store.load_key(&acc.claims.sub),
            Some(v) if v == acc.name => self.store.load_key(&acc.claims.sub),
            Some(v) => {
                let kp = self.key_for("issuer", v, 'A')?;
                if !ac.signed_by(&acc.claims.sub, &kp.public_key()) {
                    return Err(format!(
                        "--issuer {}: neither account {} nor one of its signing keys (add it with natrix jwt edit account --name {} --sk {})",
                        kp.public_key(),
                        acc.name,
                        acc.name,
                        kp.public_key()
                    ));
                }
                Ok(kp)
            }
        }
    }

    /// Signs claims as new and returns the token.
    pub fn sign(
        &self,
        c: &mut crate::security::jwt::Claims,
        kp: &KeyPair,
    ) -> Result<String, String> {
        crate::security::jwt::issue(c, kp, self.now)
    }
}
