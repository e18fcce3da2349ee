//! A PostgreSQL server of the test's own, in a temporary folder, for what the shared server cannot show: TLS
//! (`ssl = on`, a certificate for `localhost` signed by a CA made here, and a second CA that signed nothing) and
//! password authentication (the shared server trusts every local connection). Stopped and removed when dropped.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Command,
};

/// A PostgreSQL server in a temporary folder, stopped and removed when dropped.
pub struct ThrowawayPostgres {
    dir: PathBuf,
    pub port: u16,
}

/// Runs `program` (as the `postgres` user when this test runs as root: the server refuses to run as root).
fn run(program: &str, args: &[&str]) {
    let as_root = Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    let mut command = if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    };
    let out = command.args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl").current_dir(dir).args(args.split(' ')).output().expect("running openssl");
    assert!(out.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`name`.crt, `name`.key).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &format!("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN={name} -keyout {name}.key -out {name}.crt"),
    );
}

impl ThrowawayPostgres {
    /// Starts a server whose `pg_hba.conf` takes local socket connections (trusted, for the test's own
    /// setup) and then the network connections `hba` describes (one or more lines).
    pub fn start(hba: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("jobs-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        make_ca(&dir, "ca");
        make_ca(&dir, "other-ca");
        std::fs::write(dir.join("san.ext"), "subjectAltName = DNS:localhost\n").unwrap();
        openssl(&dir, "req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr");
        openssl(&dir, "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _ = Command::new("chown").args(["-R", "postgres", dir.to_str().unwrap()]).status();
        let _ = Command::new("chmod").args(["0600", dir.join("server.key").to_str().unwrap()]).status();
        let data = dir.join("data");
        run("initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\nssl = on\n\
             ssl_cert_file = '{dir}/server.crt'\nssl_key_file = '{dir}/server.key'\nfsync = off\n",
            dir = dir.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(data.join("pg_hba.conf"), format!("local all all trust\n{hba}\n")).unwrap();
        let log = dir.join("server.log");
        run("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "start"]);
        Self { dir, port }
    }

    /// The server as user `postgres` on `host`, with `query` after the `?`.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }

    /// A file of its folder: `ca.crt`, `other-ca.crt`.
    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
    /// Runs `sql` as the superuser over the server's socket (trusted), whatever the network rules.
    pub async fn admin(&self, sql: &str) {
        use sqlx::Connection;
        let url = format!("postgres://postgres@localhost:{}/postgres?host={}", self.port, self.dir.display());
        let mut connection = sqlx::PgConnection::connect(&url).await.expect("the throwaway server's socket");
        sqlx::raw_sql(sql).execute(&mut connection).await.expect(sql);
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
