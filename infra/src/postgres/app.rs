use super::*;

/// Rows per statement when seeding: big enough to amortise round trips, small enough for modest memory.
pub(super) const SEED_CHUNK: usize = 10_000;

#[async_trait]
impl AppWriter for PgStore {
    async fn add_exercises(&self, names: &[String]) -> Result<Vec<i64>> {
        sqlx::query("INSERT INTO exercises (name) SELECT * FROM UNNEST($1::text[]) ON CONFLICT (name) DO NOTHING")
            .bind(names)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        let ids: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM exercises WHERE name = ANY($1)")
            .bind(names)
            .fetch_all(&self.pool)
            .await
            .map_err(job)?
            .into_iter()
            .collect();
        Ok(names.iter().map(|n| ids[n]).collect())
    }

    async fn add_users(&self, users: &[NewUser]) -> Result<Vec<i64>> {
        let mut ids = HashMap::with_capacity(users.len());
        for chunk in users.chunks(SEED_CHUNK) {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "INSERT INTO users (name, email, phone, time_zone, email_opt_in)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[])
                 RETURNING email, id",
            )
            .bind(chunk.iter().map(|u| u.name.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.email.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.phone.as_deref()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.time_zone.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|u| u.email_opt_in).collect::<Vec<_>>())
            .fetch_all(&self.pool)
            .await
            .map_err(job)?;
            ids.extend(rows);
        }
        Ok(users.iter().map(|u| ids[&u.email]).collect())
    }

    async fn set_time_zone(&self, user_ids: &[i64], zone: &str) -> Result<()> {
        sqlx::query("UPDATE users SET time_zone = $2 WHERE id = ANY($1)")
            .bind(user_ids)
            .bind(zone)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn set_created_at(&self, user_ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE users SET created_at = $2 WHERE id = ANY($1)")
            .bind(user_ids)
            .bind(at)
            .execute(&self.pool)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn add_challenge(&self, title: &str, starts_on: NaiveDate, ends_on: NaiveDate) -> Result<i64> {
        sqlx::query_scalar("INSERT INTO challenges (title, starts_on, ends_on) VALUES ($1, $2, $3) RETURNING id")
            .bind(title)
            .bind(starts_on)
            .bind(ends_on)
            .fetch_one(&self.pool)
            .await
            .map_err(job)
    }

    async fn join_challenge(&self, challenge_id: i64, user_ids: &[i64]) -> Result<()> {
        sqlx::query(
            "INSERT INTO challenge_participants (challenge_id, user_id)
             SELECT $1, * FROM UNNEST($2::bigint[]) ON CONFLICT DO NOTHING",
        )
        .bind(challenge_id)
        .bind(user_ids)
        .execute(&self.pool)
        .await
        .map_err(job)?;
        Ok(())
    }

    async fn add_workouts(&self, workouts: &[NewWorkout]) -> Result<()> {
        for chunk in workouts.chunks(SEED_CHUNK) {
            let mut tx = self.pool.begin().await.map_err(job)?;
            // Ids first, so each set can name its workout without relying on RETURNING's order.
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT nextval(pg_get_serial_sequence('workouts', 'id')) FROM generate_series(1, $1)",
            )
            .bind(chunk.len() as i64)
            .fetch_all(&mut *tx)
            .await
            .map_err(job)?;
            sqlx::query(
                "INSERT INTO workouts (id, user_id, name, started_at, local_date, duration_minutes, calories)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::date[],
                                      $6::int[], $7::int[])",
            )
            .bind(&ids)
            .bind(chunk.iter().map(|w| w.user_id).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.name.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.started_at).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.local_date).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.duration_minutes as i32).collect::<Vec<_>>())
            .bind(chunk.iter().map(|w| w.calories as i32).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(job)?;
            let sets: Vec<_> =
                chunk.iter().zip(&ids).flat_map(|(w, id)| w.sets.iter().map(move |s| (*id, s))).collect();
            sqlx::query(
                "INSERT INTO workout_sets (workout_id, exercise_id, weight_kg, reps, personal_record)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::float8[], $4::int[], $5::bool[])",
            )
            .bind(sets.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.exercise_id).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.weight_kg).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.reps as i32).collect::<Vec<_>>())
            .bind(sets.iter().map(|(_, s)| s.personal_record).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(job)?;
            tx.commit().await.map_err(job)?;
        }
        Ok(())
    }
}
