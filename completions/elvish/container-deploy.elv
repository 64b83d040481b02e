set edit:completion:arg-completer[container-deploy] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) _BERTH_COMPLETE="elvish" container-deploy -- $@words) | to-lines
}
