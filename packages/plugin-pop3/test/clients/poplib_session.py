"""Drives a POP3 server with Python's poplib and prints what it saw as JSON.

usage: poplib_session.py MODE PORT USER PASSWORD   (MODE: plain, stls, pop3s, apop)
"""
import json
import poplib
import ssl
import sys

mode, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE

if mode == "pop3s":
    pop = poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=20)
else:
    pop = poplib.POP3("127.0.0.1", port, timeout=20)
welcome = pop.getwelcome().decode()
if mode == "stls":
    pop.stls(context)
capabilities = sorted(pop.capa().keys())
if mode == "apop":
    pop.apop(user, password)
else:
    pop.user(user)
    pop.pass_(password)
count, octets = pop.stat()
listing = [line.decode() for line in pop.list()[1]]
uidl = [line.decode() for line in pop.uidl()[1]]
messages = [b"\n".join(pop.retr(i)[1]).decode() + "\n" for i in range(1, count + 1)]
top = [line.decode() for line in pop.top(1, 0)[1]] if count else []
if count:
    pop.dele(1)
quit_reply = pop.quit().decode()
print(json.dumps({
    "welcome": welcome,
    "capabilities": capabilities,
    "stat": [count, octets],
    "list": listing,
    "uidl": uidl,
    "messages": messages,
    "top": top,
    "quit": quit_reply,
    "tls": mode in ("stls", "pop3s"),
}))
