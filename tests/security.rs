//! An attacker's tests: what an app, a stranger on the internet or a leaked URL can try, against
//! the real engine, MariaDB and RabbitMQ of the test environment. Each test says the attack it
//! makes; each would pass the attacker through if the defence it names were gone.

mod support;

use mysql_async::prelude::Queryable;

use minicloud::model::name::AppName;
use minicloud::services::{Credentials, Provisioner};
use support::services::{admin_conn, db_conn, env, mariadb_admin_url, mariadb_with, server_code};

/// What an app's account sees of `victim`'s database: `Ok` with the rows it could read, or the
/// server's refusal code.
async fn reach(attacker: &Credentials, victim: &Credentials) -> Result<Vec<String>, Option<u16>> {
    let mut conn = db_conn(attacker, &attacker.password, &attacker.resource)
        .await
        .expect("an app reaches its own database");
    let databases: Vec<String> = conn.query("SHOW DATABASES").await.unwrap();
    let read = conn
        .query::<String, _>(format!("SELECT v FROM `{}`.secrets", victim.resource))
        .await;
    let dropped = conn
        .query_drop(format!("DROP TABLE `{}`.secrets", victim.resource))
        .await;
    conn.disconnect().await.unwrap();
    match (read, dropped) {
        (Ok(rows), _) => Ok(rows),
        (Err(read), Err(_)) => {
            assert!(
                !databases.contains(&victim.resource),
                "{} is listed to {}: {databases:?}",
                victim.resource,
                attacker.user
            );
            Err(server_code(&read))
        }
        (Err(e), Ok(())) => panic!("{} dropped a table it cannot read: {e}", attacker.user),
    }
}

async fn plant_secret(owner: &Credentials) {
    let mut conn = db_conn(owner, &owner.password, &owner.resource)
        .await
        .unwrap();
    conn.query_drop("CREATE TABLE IF NOT EXISTS secrets (v TEXT)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO secrets VALUES ('victim data')")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
}

/// `_` in a database-level GRANT is a LIKE wildcard, even in backticks: app `bl-g`'s grant on
/// `app_bl_g` would cover app `blog`'s `app_blog`. Both ways round, on the real MariaDB; then
/// an installation that still carries the old, wide grant is narrowed by the next ensure.
#[tokio::test]
async fn an_app_named_like_another_cannot_reach_its_database() {
    let env = env();
    let db = mariadb_with(&env.store, &mariadb_admin_url());
    // One random suffix, so the two names differ only where `bl-g` has its `-`.
    let suffix = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let blog = AppName::try_new(format!("blog-{suffix}")).unwrap();
    let blg = AppName::try_new(format!("bl-g-{suffix}")).unwrap();
    let victim = db.ensure(&blog).await.unwrap();
    let attacker = db.ensure(&blg).await.unwrap();
    plant_secret(&victim).await;
    plant_secret(&attacker).await;

    for (who, whom) in [(&attacker, &victim), (&victim, &attacker)] {
        let got = reach(who, whom).await;
        assert!(
            matches!(got, Err(Some(1142 | 1044))),
            "{} reached {}: {got:?}",
            who.user,
            whom.resource
        );
    }

    // The grant an earlier minicloud made, unescaped: the hole is real ...
    let mut admin = admin_conn().await;
    admin
        .query_drop(format!(
            "GRANT ALL PRIVILEGES ON `{0}`.* TO '{0}'@'%'",
            attacker.resource
        ))
        .await
        .unwrap();
    admin.disconnect().await.unwrap();
    assert_eq!(
        reach(&attacker, &victim).await,
        Ok(vec!["victim data".to_owned()]),
        "the unescaped grant is the hole this test is about"
    );
    plant_secret(&victim).await;
    // ... and the next ensure closes it, keeping the app's own database usable.
    let again = db.ensure(&blg).await.unwrap();
    assert!(matches!(
        reach(&again, &victim).await,
        Err(Some(1142 | 1044))
    ));
    let mut own = db_conn(&again, &again.password, &again.resource)
        .await
        .unwrap();
    own.query_drop("INSERT INTO secrets VALUES ('still mine')")
        .await
        .unwrap();
    own.disconnect().await.unwrap();

    db.remove(&blog).await.unwrap();
    db.remove(&blg).await.unwrap();
}
