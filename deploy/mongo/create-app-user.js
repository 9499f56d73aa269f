// Runs once, when the MongoDB volume is new (docker-entrypoint-initdb.d), as the root
// user: the services' own account, with read and write on Turnout's database only.
const turnout = db.getSiblingDB("turnout");
turnout.createUser({
  user: process.env.TURNOUT_MONGO_APP_USER,
  pwd: process.env.TURNOUT_MONGO_APP_PASSWORD,
  roles: [{ role: "readWrite", db: "turnout" }],
});
