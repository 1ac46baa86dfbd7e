# bash completion for hpcz (installed to share/bash-completion/completions/hpcz)
_hpcz() {
    local cur prev words cword
    _init_completion || return
    local commands
    commands=$(hpcz --help 2>/dev/null | awk '/^Commands:/{f=1;next} f&&/^  [a-z]/{print $1}')
    if [ "$cword" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi
    local cmd=${words[1]}
    if [[ "$cur" == -* ]]; then
        # options come from the command's own --help (one source of truth)
        local opts
        opts=$(hpcz "$cmd" --help 2>/dev/null | grep -oE -- '--[a-z0-9-]+' | sort -u)
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case "$prev" in
        -o|--output) _filedir; return ;;
    esac
    _filedir '@(onnx|hpcz|npy|pb)'
}
complete -F _hpcz hpcz
