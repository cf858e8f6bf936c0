# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_p11agent_global_optspecs
    string join \n socket= h/help V/version
end

function __fish_p11agent_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_p11agent_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_p11agent_using_subcommand
    set -l cmd (__fish_p11agent_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c p11agent -n "__fish_p11agent_needs_command" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_needs_command" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "daemon" -d 'Run the agent in the foreground, logging to stderr'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "status" -d 'Show whether the agent runs, its modules and counts'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "tokens" -d 'List the tokens the agent sees'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "list" -d 'List identities (certificates, with their keys when present)'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "show" -d 'Show one identity in full'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "sign" -d 'Sign a message with an identity\'s key, as TLS does in CertificateVerify'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "get" -d 'Fetch an HTTPS URL with the agent\'s client certificate, like a minimal curl'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "tunnel" -d 'Forward a local port to a TLS server over mutual TLS, with the agent\'s client certificate: any TCP client becomes an mTLS client'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "login" -d 'Log in to a token ahead of the first signature'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "logout" -d 'Log out of a token, or of all tokens: the next signature needs the PIN again'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "select" -d 'Show which client certificate the agent would send to a server'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "explain" -d 'Explain, certificate by certificate, why each is or is not offered to a server: the same decision as `select`, as a report'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "decisions" -d 'List the client-certificate choices remembered per origin'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "forget" -d 'Forget remembered choices, for one origin or all (a browser\'s "clear SSL state"): the next connection decides afresh'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "probe" -d 'Ask a TLS server what it wants of a client certificate, and show which of your identities would be offered to it and why not the others'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "chooser" -d 'Ask a person at the terminal which client certificate to send: the agent\'s default certificate chooser (`daemon --chooser tty`)'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "watch" -d 'Print what happens in the agent, one line per event, as it happens'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "setup" -d 'Make another program use the agent\'s identities through its PKCS#11 module, libp11agent_pkcs11.so'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "completions" -d 'Print a shell\'s completion script for p11agent.'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "man" -d 'Print the man page (roff), as dist/man/p11agent.1 ships it'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "module-helper" -d 'Serve one PKCS#11 module for the agent that started this process, on the socket that is its standard input (`isolate = true`)'
complete -c p11agent -n "__fish_p11agent_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l module -d 'A PKCS#11 module to load; repeat for several. Replaces the modules registered with p11-kit. p11agent\'s own module (libp11agent_pkcs11.so) is refused: it forwards to this agent' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l isolate -d 'Load every module in a helper process of its own (true, the default) or in the agent (false). A module that crashes in a helper costs its requests in flight and its logins; the helper restarts. In the agent, it takes the agent down, but a signature costs about 15 µs less CPU. Overrides `isolate` and `[isolate_module]` in the config file' -r -f -a "true\t''
false\t''"
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l config -d 'Configuration file [default: $XDG_CONFIG_HOME/p11agent/config.toml, when present]. The digest policy files are read from digest.d/ beside it' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l pin-file -d 'Read the user PIN from FILE when a login is needed (automation; keep the file mode 0600). Wins over --pinentry' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l pinentry -d 'Ask for PINs with this pinentry program (pinentry-curses, pinentry-tty, pinentry-gnome3, ... as gpg-agent uses them)' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l ca-dir -d 'A folder of CA certificates (PEM or DER files) used with those on the tokens to build each identity\'s chain' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l chooser -d 'Who asks a person to pick a certificate when policy says one must and the TLS application cannot ask itself: a program speaking the chooser contract (`p11agent chooser --help`), or `tty` for the shipped terminal chooser. Without one the agent sends nothing' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l decisions-file -d 'Remember choices across restarts in FILE (mode 0600); without it they last until the daemon exits' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l poll-interval -d 'Ask each module every MS milliseconds which tokens are present (insertions and removals show within about that time) [default: 500]' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l module-deadline -d 'Mark a module unavailable when one PKCS#11 poll or scan takes longer than MS milliseconds [default: 5000]' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l audit-log -d 'Append an audit record (one JSON line) for every signature, selection, login, logout and refusal to FILE (created 0600)' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l extra-socket -d 'Also listen on PATH, a restricted socket meant to be forwarded to a remote shell (`ssh -R /run/user/UID/p11agent/agent.sock:PATH host`, as gpg-agent\'s extra socket): there only hello, status, tokens, list, show, select and sign are served (signatures under the same purpose binding and confirmation), every request is audited as remote, and logins, logouts, remembered choices and events are refused' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand daemon" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand status" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand status" -l json -d 'Print JSON for scripts instead of a table'
complete -c p11agent -n "__fish_p11agent_using_subcommand status" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand status" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand tokens" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand tokens" -l json -d 'Print JSON for scripts instead of a table'
complete -c p11agent -n "__fish_p11agent_using_subcommand tokens" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand tokens" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l subject -d 'Subject contains TEXT (case-insensitive)' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l subject-exact -d 'Subject is exactly DN (RFC 4514, as printed)' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l issuer -d 'Issuer contains TEXT (case-insensitive)' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l issuer-exact -d 'Issuer is exactly DN (RFC 4514, as printed)' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l fingerprint -d 'SHA-256 fingerprint starts with HEX (colons allowed)' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l key-type -d 'Key type' -r -f -a "rsa\t''
ec\t''
ed25519\t''
other\t''"
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l token -d 'On the token with this label or serial' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l has-key -d 'Only identities with a private key'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l no-key -d 'Only certificates without a private key'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l usable -d 'Only identities usable for TLS client authentication'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l unusable -d 'Only identities not usable for TLS client authentication'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l present -d 'Only identities whose token is inserted'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l absent -d 'Only identities of removed tokens the agent remembers'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -l json -d 'Print JSON for scripts instead of a table'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand list" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand show" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand show" -l json -d 'Print JSON: the identity record plus `certificate_pem`'
complete -c p11agent -n "__fish_p11agent_using_subcommand show" -l pem -d 'Print only the certificate, PEM-encoded'
complete -c p11agent -n "__fish_p11agent_using_subcommand show" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand show" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -l id -d 'The identity\'s id (SHA-256 fingerprint) or a unique prefix of at least 8 hex digits, as `p11agent list` prints it' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -l scheme -d 'The TLS signature scheme (IANA name). ECDSA schemes are bound to their curve; `p11agent show ID --json` lists an identity\'s schemes' -r -f -a "ed25519\t''
ecdsa_secp256r1_sha256\t''
ecdsa_secp384r1_sha384\t''
ecdsa_secp521r1_sha512\t''
rsa_pss_rsae_sha256\t''
rsa_pss_rsae_sha384\t''
rsa_pss_rsae_sha512\t''
rsa_pkcs1_sha256\t''
rsa_pkcs1_sha384\t''
rsa_pkcs1_sha512\t''"
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -l in -d 'The message to sign (not a digest: the agent hashes); `-` is stdin' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -l out -d 'Where to write the signature (raw bytes; DER for ECDSA); `-` is stdout' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand sign" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand get" -l ca-file -d 'Trust the server certificates issued by the CA certificates in this PEM file, instead of the system\'s roots' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand get" -l id -d 'Send this identity (id or unique prefix), whatever the server\'s CA list says. By default the agent selects (`p11agent explain` shows how), and when a person must choose, you are asked on the terminal' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand get" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand get" -s i -l include -d 'Print the status line and headers before the body'
complete -c p11agent -n "__fish_p11agent_using_subcommand get" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand get" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -l listen -d 'Where to listen: ADDR:PORT (e.g. 127.0.0.1:8080), PORT alone (on 127.0.0.1), or unix:PATH. Any program that can reach it uses your certificate: listen on another address than 127.0.0.1 only with care' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -l servername -d 'The server name sent (SNI) and checked in the server\'s certificate, and the origin the agent\'s certificate policy sees [default: HOST]' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -l ca-file -d 'Trust the server certificates issued by the CA certificates in this PEM file, instead of the system\'s roots' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -l id -d 'Send this identity (id or unique prefix), whatever the server\'s CA list says. By default the agent selects, as for `get`; nobody is asked, so where a person would have to choose, no certificate is sent' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand tunnel" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand login" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand login" -l pin-stdin -d 'Read the PIN from the first line of standard input instead of letting the agent ask through its pinentry or PIN file'
complete -c p11agent -n "__fish_p11agent_using_subcommand login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand login" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand logout" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand logout" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand logout" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -l origin -d 'The server: https://host[:port], a URL, or host:port' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -l ca -d 'A CA the server accepts: a file with PEM or DER certificates (their subjects are used) or a DER distinguished name. Repeat for several; none means the server accepts any issuer' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -l scheme -d 'A signature scheme the server accepts (IANA name, e.g. ecdsa_secp256r1_sha256). Repeat for several; none skips the check' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -l json -d 'Print JSON for scripts instead of text'
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand select" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -l origin -d 'The server: https://host[:port], a URL, or host:port' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -l ca -d 'A CA the server accepts: a file with PEM or DER certificates (their subjects are used) or a DER distinguished name. Repeat for several; none means the server accepts any issuer' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -l scheme -d 'A signature scheme the server accepts (IANA name, e.g. ecdsa_secp256r1_sha256). Repeat for several; none skips the check' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -l json -d 'Print JSON for scripts instead of text'
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand explain" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand decisions" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand decisions" -l json -d 'Print JSON for scripts instead of a table'
complete -c p11agent -n "__fish_p11agent_using_subcommand decisions" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand decisions" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand forget" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand forget" -l all -d 'Forget every remembered choice'
complete -c p11agent -n "__fish_p11agent_using_subcommand forget" -l json -d 'Print JSON for scripts instead of text'
complete -c p11agent -n "__fish_p11agent_using_subcommand forget" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand forget" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -l servername -d 'The name to send as SNI and to use for the origin [default: HOST]' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -l timeout -d 'Give up after this many seconds' -r
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -l tls12 -d 'Offer only TLS 1.2 (servers may ask differently per version)'
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -l tls13 -d 'Offer only TLS 1.3'
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -l json -d 'Print JSON for scripts instead of text'
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand probe" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand chooser" -l tty -d 'The terminal to ask on' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand chooser" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand chooser" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand chooser" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand watch" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand watch" -l json -d 'Print each event as one JSON object per line, as the protocol has it, for scripts'
complete -c p11agent -n "__fish_p11agent_using_subcommand watch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand watch" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -l module -d 'The agent\'s PKCS#11 module [default: libp11agent_pkcs11.so beside the p11agent binary]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -l print -d 'Show exactly what would be written and run, and change nothing'
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -l remove -d 'Undo the setup of TARGET: delete the files setup wrote for it and unregister the module from the NSS databases'
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -l json -d 'Print what was done (or, with --print, what would be) as JSON'
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand setup" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand completions" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c p11agent -n "__fish_p11agent_using_subcommand completions" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand man" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand man" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand man" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand module-helper" -l socket -d 'The agent\'s socket [default: $XDG_RUNTIME_DIR/p11agent/agent.sock]' -r -F
complete -c p11agent -n "__fish_p11agent_using_subcommand module-helper" -s h -l help -d 'Print help'
complete -c p11agent -n "__fish_p11agent_using_subcommand module-helper" -s V -l version -d 'Print version'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "daemon" -d 'Run the agent in the foreground, logging to stderr'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "status" -d 'Show whether the agent runs, its modules and counts'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "tokens" -d 'List the tokens the agent sees'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "list" -d 'List identities (certificates, with their keys when present)'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "show" -d 'Show one identity in full'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "sign" -d 'Sign a message with an identity\'s key, as TLS does in CertificateVerify'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "get" -d 'Fetch an HTTPS URL with the agent\'s client certificate, like a minimal curl'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "tunnel" -d 'Forward a local port to a TLS server over mutual TLS, with the agent\'s client certificate: any TCP client becomes an mTLS client'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "login" -d 'Log in to a token ahead of the first signature'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "logout" -d 'Log out of a token, or of all tokens: the next signature needs the PIN again'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "select" -d 'Show which client certificate the agent would send to a server'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "explain" -d 'Explain, certificate by certificate, why each is or is not offered to a server: the same decision as `select`, as a report'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "decisions" -d 'List the client-certificate choices remembered per origin'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "forget" -d 'Forget remembered choices, for one origin or all (a browser\'s "clear SSL state"): the next connection decides afresh'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "probe" -d 'Ask a TLS server what it wants of a client certificate, and show which of your identities would be offered to it and why not the others'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "chooser" -d 'Ask a person at the terminal which client certificate to send: the agent\'s default certificate chooser (`daemon --chooser tty`)'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "watch" -d 'Print what happens in the agent, one line per event, as it happens'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "setup" -d 'Make another program use the agent\'s identities through its PKCS#11 module, libp11agent_pkcs11.so'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "completions" -d 'Print a shell\'s completion script for p11agent.'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "man" -d 'Print the man page (roff), as dist/man/p11agent.1 ships it'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "module-helper" -d 'Serve one PKCS#11 module for the agent that started this process, on the socket that is its standard input (`isolate = true`)'
complete -c p11agent -n "__fish_p11agent_using_subcommand help; and not __fish_seen_subcommand_from daemon status tokens list show sign get tunnel login logout select explain decisions forget probe chooser watch setup completions man module-helper help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
