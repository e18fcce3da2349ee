//! The PostgreSQL store over TLS, against a throwaway server made for this test: `ssl = on` with a certificate
//! for `localhost` signed by a CA the test makes, and a `pg_hba.conf` that only takes TLS connections (as RDS
//! with `rds.force_ssl`). `verify-full` connects; a wrong CA, a wrong host name and plain text are refused, each
//! with an error that says why.

use infra::postgres::PgStore;
use integration_tests::throwaway_pg::ThrowawayPostgres;

async fn refusal(url: &str) -> String {
    match PgStore::connect(url).await {
        Ok(_) => panic!("{url} connected"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn verify_full_connects_and_every_weaker_connection_is_refused() {
    let server = ThrowawayPostgres::start("hostssl all all 127.0.0.1/32 trust");

    let ca = format!("sslmode=verify-full&sslrootcert={}", server.file("ca.crt"));
    let store = PgStore::connect(&server.url("localhost", &ca)).await.expect("verify-full against the right CA");
    let (ssl,): (bool,) = sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(ssl, "the connection is not encrypted");

    let other = format!("sslmode=verify-full&sslrootcert={}", server.file("other-ca.crt"));
    let wrong_ca = refusal(&server.url("localhost", &other)).await;
    assert!(wrong_ca.contains("TLS") && wrong_ca.contains("UnknownIssuer"), "{wrong_ca}");
    assert!(
        wrong_ca.contains(&format!("localhost:{}/postgres", server.port)),
        "the error names the server: {wrong_ca}"
    );

    // No sslrootcert: the RDS authorities, which did not sign this server's certificate.
    let rds = refusal(&server.url("localhost", "sslmode=verify-full")).await;
    assert!(rds.contains("UnknownIssuer"), "{rds}");

    // The certificate is for localhost, not for 127.0.0.1.
    let wrong_host = refusal(&server.url("127.0.0.1", &ca)).await;
    assert!(wrong_host.contains("TLS") && wrong_host.contains("not valid for name"), "{wrong_host}");

    let plain = refusal(&server.url("127.0.0.1", "sslmode=disable")).await;
    assert!(plain.contains("no pg_hba.conf entry") && plain.contains("no encryption"), "{plain}");
}
