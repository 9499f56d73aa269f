#!/bin/sh
# Prints the demo directory's LDIF: STUDENTS students (default 500), a student without
# mail, admin1 and officer1 in their groups, and a physics group (students 2, 12, ...).
set -eu
n_students="${1:-500}"
base="dc=turnout,dc=test"
people="ou=people,$base"
groups="ou=groups,$base"
hash() { slappasswd -s "$1"; }
cat <<LDIF
dn: $base
objectClass: dcObject
objectClass: organization
dc: turnout
o: Turnout Test University

dn: $people
objectClass: organizationalUnit
ou: people

dn: $groups
objectClass: organizationalUnit
ou: groups

dn: uid=nomail,$people
objectClass: inetOrgPerson
uid: nomail
cn: No Mail
sn: Mail
userPassword: $(hash vote-nomail)

dn: uid=admin1,$people
objectClass: inetOrgPerson
uid: admin1
cn: Admin One
sn: One
mail: admin1@staff.turnout.test
userPassword: $(hash vote-admin1)

dn: uid=officer1,$people
objectClass: inetOrgPerson
uid: officer1
cn: Officer One
sn: One
mail: officer1@staff.turnout.test
userPassword: $(hash vote-officer1)

dn: cn=admins,$groups
objectClass: groupOfNames
cn: admins
member: uid=admin1,$people

dn: cn=officers,$groups
objectClass: groupOfNames
cn: officers
member: uid=officer1,$people

LDIF
echo "dn: cn=physics,$groups"
echo "objectClass: groupOfNames"
echo "cn: physics"
i=2
while [ "$i" -le "$n_students" ]; do
  printf 'member: uid=student%05d,%s\n' "$i" "$people"
  i=$((i + 10))
done
echo
i=1
while [ "$i" -le "$n_students" ]; do
  uid=$(printf 'student%05d' "$i")
  dept=GEN
  [ $((i % 10)) -eq 2 ] && dept=PHYS
  printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: Student %05d\nsn: %05d\nmail: %s@students.turnout.test\ndepartmentNumber: %s\nuserPassword: %s\n\n' \
    "$uid" "$people" "$uid" "$i" "$i" "$uid" "$dept" "$(hash "$(printf 'vote-%05d' "$i")")"
  i=$((i + 1))
done
