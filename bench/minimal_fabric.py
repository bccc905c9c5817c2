"""The Python limit: one Fabric ThreadingGroup, the floor's command, the cert on stdin, nothing else.
Usage: minimal_fabric.py KNOWN_HOSTS KEY CERT DIR PORT...   (hosts: root@127.0.0.1:PORT)"""
import sys, threading
from fabric import ThreadingGroup

kh, key, cert, d, *ports = sys.argv[1:]
CMD = f"install -d -m 0755 '{d}' && t=$(mktemp '{d}/.ca.XXXXXX') && cat > $t && chmod 0644 $t && mv $t '{d}/ca.crt'"

class Cert(threading.local):  # one stream per thread; read() hands over everything at once: invoke reads a
    def __init__(self): self.left = open(cert).read()  # plain file 1 byte per 10 ms loop (700 B = 7 s)
    def read(self, n): data, self.left = self.left, ""; return data

g = ThreadingGroup(*(f"root@127.0.0.1:{p}" for p in ports), connect_kwargs={"key_filename": [key]})
for c in g: c.client.load_host_keys(kh)
g.run(CMD, in_stream=Cert(), hide=True)  # raises GroupException if any host fails
