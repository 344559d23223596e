//! The dispatch of the client commands: clap's parsed words to the module that does the work.

use super::args::{
    AddChannel, AlertsCommand, AppsCommand, BackupsCommand, CertsCommand, ClientArgs,
    ClientCommand, DomainsCommand, EnvArgs, EnvCommand, ManifestCommand, RoutesCommand,
    TokensCommand,
};
use super::error::CliError;
use super::{alerts, apps, backups, certs, manifest, manifest_init, routes, tokens, ApiClient};
use crate::model::secret::Secret;

/// Runs one client command to the end on a small runtime of its own.
pub fn run(command: ClientCommand) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "could not start the async runtime",
            source,
        })?;
    runtime.block_on(dispatch(command))
}

async fn dispatch(command: ClientCommand) -> Result<(), CliError> {
    match command {
        ClientCommand::Apps(cmd) => apps_command(cmd).await,
        ClientCommand::Domains(cmd) => domains_command(cmd).await,
        ClientCommand::Routes(cmd) => match cmd {
            RoutesCommand::List { client: c } => routes::list(&client(&c)?).await,
            RoutesCommand::Add {
                host,
                upstream,
                client: c,
            } => routes::add(&client(&c)?, &host, &upstream).await,
            RoutesCommand::Rm { host, client: c } => routes::remove(&client(&c)?, &host).await,
        },
        ClientCommand::Backups(cmd) => match cmd {
            BackupsCommand::List { app, client: c } => match app {
                Some(app) => backups::list(&client(&c)?, &app).await,
                None => backups::list_all(&client(&c)?).await,
            },
            BackupsCommand::Run {
                app,
                platform,
                client: c,
            } => match app {
                Some(app) if !platform => backups::run(&client(&c)?, &app).await,
                _ => backups::run_platform(&client(&c)?).await,
            },
            BackupsCommand::Restore {
                app,
                id,
                only,
                clone,
                client: c,
            } => backups::restore(&client(&c)?, &app, &id, &only, clone.as_deref()).await,
            BackupsCommand::Verify { app, client: c } => backups::verify(&client(&c)?, &app).await,
            BackupsCommand::Settings {
                app,
                schedule,
                keep_last,
                keep_daily,
                keep_weekly,
                keep_monthly,
                client: c,
            } => {
                let change = crate::model::PolicyChange {
                    schedule,
                    keep_last,
                    keep_daily,
                    keep_weekly,
                    keep_monthly,
                };
                backups::settings(&client(&c)?, &app, &change).await
            }
            BackupsCommand::Download {
                app,
                id,
                output,
                client: c,
            } => backups::download(&client(&c)?, &app, &id, &output).await,
            BackupsCommand::Key { client: c } => backups::key(&client(&c)?).await,
            BackupsCommand::TestS3 { client: c } => backups::test_s3(&client(&c)?).await,
        },
        ClientCommand::Certs(cmd) => match cmd {
            CertsCommand::List { client: c } => certs::list(&client(&c)?).await,
            CertsCommand::Renew { host, client: c } => certs::renew(&client(&c)?, &host).await,
        },
        ClientCommand::Alerts(cmd) => alerts_command(cmd).await,
        ClientCommand::Incidents { open, client: c } => alerts::incidents(&client(&c)?, open).await,
        ClientCommand::Tokens(cmd) => match cmd {
            TokensCommand::List { client: c } => tokens::list(&client(&c)?).await,
            TokensCommand::Create {
                name,
                expires_in_days,
                client: c,
            } => tokens::create(&client(&c)?, &name, expires_in_days).await,
            TokensCommand::Revoke { name, client: c } => tokens::revoke(&client(&c)?, &name).await,
        },
        ClientCommand::Audit {
            actor,
            what,
            failed,
            days,
            limit,
            client: c,
        } => {
            let query = tokens::AuditArgs {
                actor,
                what,
                failed,
                days,
                limit,
            };
            tokens::audit(&client(&c)?, &query).await
        }
        ClientCommand::Manifest(ManifestCommand::Check { target }) => {
            let checked = manifest::check(&target).await?;
            print!("{}", manifest::describe(&checked));
            println!("ok: {target} is a valid app manifest");
            Ok(())
        }
        ClientCommand::Manifest(ManifestCommand::Init {
            name,
            port,
            health,
            database,
            messagebus,
            storage,
            runner,
            output,
            force,
            yes,
        }) => {
            use crate::model::manifest::Need;
            use std::io::IsTerminal;
            let needs = [
                (database, Need::Database),
                (messagebus, Need::Messagebus),
                (storage, Need::Storage),
            ]
            .into_iter()
            .filter_map(|(on, need)| on.then_some(need))
            .collect();
            let flags = manifest_init::Flags {
                name,
                port,
                health,
                needs,
                runners: runner,
            };
            let interactive = !yes && std::io::stdin().is_terminal();
            let written = manifest_init::init(&flags, &output, force, interactive)?;
            print!("{}", manifest::describe(&written));
            println!(
                "wrote {}; check it any time with: minicloud manifest check {}",
                output.display(),
                output.display()
            );
            Ok(())
        }
    }
}

async fn alerts_command(cmd: AlertsCommand) -> Result<(), CliError> {
    match cmd {
        AlertsCommand::Channels { client: c } => alerts::channels(&client(&c)?).await,
        AlertsCommand::Add(AddChannel::Webhook {
            url,
            secret_stdin,
            client: c,
        }) => {
            let api = client(&c)?;
            alerts::add(&api, alerts::webhook_body(&url, secret_stdin)?).await
        }
        AlertsCommand::Add(AddChannel::Email {
            smtp_host,
            smtp_port,
            security,
            smtp_user,
            smtp_password_stdin: _,
            from,
            to,
            client: c,
        }) => {
            let api = client(&c)?;
            let body = alerts::email_body(alerts::EmailArgs {
                host: smtp_host,
                port: smtp_port,
                security,
                user: smtp_user,
                from,
                to,
            })?;
            alerts::add(&api, body).await
        }
        AlertsCommand::Add(AddChannel::Ntfy {
            url,
            token_stdin,
            client: c,
        }) => {
            let api = client(&c)?;
            alerts::add(&api, alerts::ntfy_body(&url, token_stdin)?).await
        }
        AlertsCommand::Add(AddChannel::Slack { url, client: c }) => {
            let body = serde_json::json!({ "kind": "slack", "url": url });
            alerts::add(&client(&c)?, body).await
        }
        AlertsCommand::Add(AddChannel::Discord { url, client: c }) => {
            let body = serde_json::json!({ "kind": "discord", "url": url });
            alerts::add(&client(&c)?, body).await
        }
        AlertsCommand::Add(AddChannel::Telegram {
            chat_id,
            api_url,
            client: c,
        }) => {
            let api = client(&c)?;
            alerts::add(&api, alerts::telegram_body(&chat_id, api_url)?).await
        }
        AlertsCommand::Rm { id, client: c } => alerts::remove(&client(&c)?, &id).await,
        AlertsCommand::Test { id, client: c } => alerts::test(&client(&c)?, &id).await,
    }
}

fn client(args: &ClientArgs) -> Result<ApiClient, CliError> {
    Ok(ApiClient::new(
        &args.url,
        args.token.clone().map(Secret::new),
        args.insecure,
    )?)
}

async fn apps_command(cmd: AppsCommand) -> Result<(), CliError> {
    use AppsCommand as A;
    match cmd {
        A::Add {
            image,
            name,
            env,
            memory,
            pids_limit,
            cpu_shares,
            registry_user,
            registry_password_stdin: _,
            service,
            domain,
            client: c,
        } => {
            // Everything that can be wrong locally is reported before anything is sent.
            let env = apps::parse_assignments(&env, "--env")?;
            let api = client(&c)?;
            let registry = match registry_user {
                Some(user) => Some((user, apps::read_password_stdin()?)),
                None => None,
            };
            let new = apps::NewApp {
                image,
                name,
                env,
                memory_mb: memory,
                pids_limit,
                cpu_shares,
                registry,
                services: service,
                domains: domain,
            };
            apps::add(&api, new).await
        }
        A::List { client: c } => apps::list(&client(&c)?).await,
        A::Show { name, client: c } => apps::show(&client(&c)?, &name).await,
        A::Deploy {
            name,
            image,
            force,
            client: c,
        } => apps::deploy(&client(&c)?, &name, image.as_deref(), force).await,
        A::Rollback {
            name,
            revision,
            client: c,
        } => apps::rollback(&client(&c)?, &name, revision).await,
        A::Restart { name, client: c } => apps::lifecycle(&client(&c)?, &name, "restart").await,
        A::Stop { name, client: c } => apps::lifecycle(&client(&c)?, &name, "stop").await,
        A::Start { name, client: c } => apps::lifecycle(&client(&c)?, &name, "start").await,
        A::History { name, client: c } => apps::history(&client(&c)?, &name).await,
        A::Services {
            name,
            reveal,
            client: c,
        } => apps::services(&client(&c)?, &name, reveal).await,
        A::Attach {
            name,
            service,
            client: c,
        } => apps::attach(&client(&c)?, &name, &service).await,
        A::Detach {
            name,
            service,
            with_data,
            client: c,
        } => apps::detach(&client(&c)?, &name, &service, with_data).await,
        A::RotateCredentials { name, client: c } => {
            apps::lifecycle(&client(&c)?, &name, "rotate-credentials").await
        }
        A::RotateWebhook { name, client: c } => apps::rotate_webhook(&client(&c)?, &name).await,
        A::Logs {
            name,
            tail,
            follow,
            previous,
            client: c,
        } => apps::logs(&client(&c)?, &name, tail, follow, previous).await,
        A::Env(EnvArgs {
            command,
            name,
            client: c,
        }) => match command {
            None => {
                let name = name.ok_or_else(|| CliError::message("give the app's name"))?;
                apps::env_list(&client(&c)?, &name).await
            }
            Some(EnvCommand::Set { name, vars }) => {
                let set = apps::parse_assignments(&vars, "env set")?;
                apps::env_change(&client(&c)?, &name, set, Vec::new()).await
            }
            Some(EnvCommand::Unset { name, keys, all }) => {
                let unset = if all { vec!["*".to_owned()] } else { keys };
                apps::env_change(&client(&c)?, &name, Default::default(), unset).await
            }
        },
        A::Rm {
            name,
            with_data,
            client: c,
        } => apps::remove(&client(&c)?, &name, with_data).await,
    }
}

async fn domains_command(cmd: DomainsCommand) -> Result<(), CliError> {
    match cmd {
        DomainsCommand::Add {
            name,
            domain,
            client: c,
        } => apps::domain_add(&client(&c)?, &name, &domain).await,
        DomainsCommand::Rm {
            name,
            domain,
            client: c,
        } => apps::domain_remove(&client(&c)?, &name, &domain).await,
        DomainsCommand::List { name, client: c } => apps::domain_list(&client(&c)?, &name).await,
    }
}
