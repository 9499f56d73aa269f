# A demo university directory: OpenLDAP seeded with students (student00001 / vote-00001,
# ...), admin1 / vote-admin1 in cn=admins, officer1 / vote-officer1 in cn=officers.
# For a real election, point TURNOUT_LDAP_URL at the university's directory instead.
FROM debian:bookworm-slim
ARG STUDENTS=500
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slapd ldap-utils \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/ldap/slapd.conf deploy/ldap/seed.sh /etc/turnout-ldap/
RUN mkdir -p /var/lib/turnout-ldap \
 && sh /etc/turnout-ldap/seed.sh "$STUDENTS" > /etc/turnout-ldap/seed.ldif \
 && slapadd -q -f /etc/turnout-ldap/slapd.conf -l /etc/turnout-ldap/seed.ldif
EXPOSE 389
CMD ["/usr/sbin/slapd", "-d", "0", "-h", "ldap:///", "-f", "/etc/turnout-ldap/slapd.conf"]
