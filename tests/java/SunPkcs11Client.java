import java.io.*;
import java.net.*;
import java.security.*;
import java.security.cert.*;
import javax.net.ssl.*;

// A TLS client whose key store is the agent's PKCS#11 module through SunPKCS11:
// java SunPkcs11Client.java CONFIG SERVER_CA PORT PROTOCOL prints the page.
public class SunPkcs11Client {
    public static void main(String[] args) throws Exception {
        Provider p = Security.getProvider("SunPKCS11").configure(args[0]);
        Security.addProvider(p);
        KeyStore keys = KeyStore.getInstance("PKCS11", p);
        keys.load(null, new char[0]);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(keys, new char[0]);
        KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        try (InputStream in = new FileInputStream(args[1])) {
            trust.setCertificateEntry("server-ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket("localhost", Integer.parseInt(args[2]))) {
            s.setEnabledProtocols(new String[] { args[3] });
            s.getOutputStream().write("GET / HTTP/1.0\r\n\r\n".getBytes());
            s.getOutputStream().flush();
            s.getInputStream().transferTo(System.out);
        }
    }
}
