// A minimal Express app that logs a user in with express-session, storing the session in
// Redis through connect-redis' default layout ("sess:" + id, JSON). mediagate's tests log in
// here and then send the cookie it sets through nginx.
//
// Env: PORT, REDIS_URL, SESSION_SECRET (comma-separated: the first signs).
import express from "express";
import session from "express-session";
import { RedisStore } from "connect-redis";
import { createClient } from "redis";

const client = createClient({ url: process.env.REDIS_URL });
await client.connect();

const app = express();
app.use(
  session({
    store: new RedisStore({ client }),
    secret: process.env.SESSION_SECRET.split(","),
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true },
  }),
);

// Log in as ?user=…, with optional ?roles=a,b (what the app's own login would do).
app.post("/login", (req, res) => {
  req.session.userId = req.query.user;
  req.session.roles = req.query.roles ? req.query.roles.split(",") : [];
  res.json({ ok: true });
});

app.post("/logout", (req, res) => {
  req.session.destroy(() => res.json({ ok: true }));
});

const server = app.listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`listening on ${server.address().port}`);
});
