using System.CommandLine;
using System.Text.Json.Nodes;

namespace CoeffTune.Cli;

/// <summary>The recipe flag and each method's own flags, turned into the per-method JSON options the library reads.</summary>
public sealed class MethodOptions
{
    public readonly Option<string> Method = new("--method") { Description = "recipe: methods joined by '+' (coeff, lora, dora, ssf, bitfit, fact, snell, adapter, vpt, linear, full), e.g. coeff+lora", DefaultValueFactory = _ => "coeff+lora" };
    private readonly Option<double?> coeffDropout = new("--coeff-dropout") { Description = "coefficient dropout p on alpha (default 0)" };
    private readonly Option<string?> coeffParam = new("--coeff-param") { Description = "alpha parameterisation: residual (default), direct-identity, direct-random" };
    private readonly Option<double?> coeffLr = new("--coeff-lr") { Description = "learning rate for alpha (default: --lr)" };
    private readonly Option<double?> coeffWd = new("--coeff-wd") { Description = "weight decay for alpha (default: --weight-decay)" };
    private readonly Option<int?> loraR = new("--lora-r") { Description = "LoRA/DoRA rank (default 8)" };
    private readonly Option<double?> loraAlpha = new("--lora-alpha") { Description = "LoRA/DoRA lora_alpha; scaling is lora_alpha / r (default 16)" };
    private readonly Option<double?> loraDropout = new("--lora-dropout") { Description = "LoRA/DoRA input dropout (default 0)" };
    private readonly Option<string[]> loraTargets = new("--lora-targets") { Description = "LoRA/DoRA target modules: exact path, dotted suffix, or re:REGEX (default: query value)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<double?> loraLr = new("--lora-lr") { Description = "learning rate for LoRA/DoRA (default: --lr)" };
    private readonly Option<double?> loraWd = new("--lora-wd") { Description = "weight decay for LoRA/DoRA (default: --weight-decay)" };
    private readonly Option<string?> ssfInit = new("--ssf-init") { Description = "SSF initialisation: identity (default) or normal (N(1,0.02)/N(0,0.02))" };
    private readonly Option<string[]> ssfTargets = new("--ssf-targets") { Description = "SSF target modules (default: every Linear and LayerNorm)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<int?> factRank = new("--fact-rank") { Description = "FacT-TT rank r of the shared factors (default 8)" };
    private readonly Option<double?> factScale = new("--fact-scale") { Description = "FacT-TT scale s of the update (default 1)" };
    private readonly Option<double?> factDropout = new("--fact-dropout") { Description = "FacT-TT dropout after the cores (default 0.1)" };
    private readonly Option<string[]> factTargets = new("--fact-targets") { Description = "FacT-TT target Linears (default: every Linear whose widths are multiples of the model width)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<double?> factLr = new("--fact-lr") { Description = "learning rate for FacT-TT (default: --lr)" };
    private readonly Option<double?> factWd = new("--fact-wd") { Description = "weight decay for FacT-TT (default: --weight-decay)" };
    private readonly Option<int?> snellRank = new("--snell-rank") { Description = "SNELL rank r, even: two kernel terms of r/2 dimensions (default 8, SNELL-8)" };
    private readonly Option<double?> snellSparsity = new("--snell-sparsity") { Description = "SNELL sparsity: fraction of each update's entries zeroed, in [0, 1) (default 0.4)" };
    private readonly Option<string[]> snellTargets = new("--snell-targets") { Description = "SNELL target Linears (default: every Linear of the backbone)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<double?> snellLr = new("--snell-lr") { Description = "learning rate for SNELL (default: --lr)" };
    private readonly Option<double?> snellWd = new("--snell-wd") { Description = "weight decay for SNELL (default: --weight-decay)" };
    private readonly Option<int?> adapterSize = new("--adapter-size") { Description = "adapter bottleneck size (default 8)" };
    private readonly Option<string[]> adapterTargets = new("--adapter-targets") { Description = "modules followed by an adapter (default: every attention layer and MLP output)", AllowMultipleArgumentsPerToken = true };
    private readonly Option<double?> adapterLr = new("--adapter-lr") { Description = "learning rate for the adapters (default: --lr)" };
    private readonly Option<double?> adapterWd = new("--adapter-wd") { Description = "weight decay for the adapters (default: --weight-decay)" };
    private readonly Option<int?> vptTokens = new("--vpt-tokens") { Description = "VPT-Deep prompt tokens per layer (default 10)" };
    private readonly Option<double?> vptDropout = new("--vpt-dropout") { Description = "VPT-Deep dropout on the prompts (default 0)" };
    private readonly Option<double?> vptLr = new("--vpt-lr") { Description = "learning rate for the prompts (default: --lr)" };
    private readonly Option<double?> vptWd = new("--vpt-wd") { Description = "weight decay for the prompts (default: --weight-decay)" };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Method, coeffDropout, coeffParam, coeffLr, coeffWd, loraR, loraAlpha, loraDropout, loraTargets, loraLr, loraWd, ssfInit, ssfTargets,
                     factRank, factScale, factDropout, factTargets, factLr, factWd, snellRank, snellSparsity, snellTargets, snellLr, snellWd,
                     adapterSize, adapterTargets, adapterLr, adapterWd, vptTokens, vptDropout, vptLr, vptWd })
            cmd.Options.Add(o);
    }

    public IReadOnlyDictionary<string, JsonObject> Read(ParseResult p)
    {
        var coeff = new JsonObject { ["coeff_dropout"] = p.GetValue(coeffDropout), ["parameterization"] = p.GetValue(coeffParam), ["lr"] = p.GetValue(coeffLr), ["weight_decay"] = p.GetValue(coeffWd) };
        JsonObject Lora() => new()
        {
            ["r"] = p.GetValue(loraR), ["lora_alpha"] = p.GetValue(loraAlpha), ["lora_dropout"] = p.GetValue(loraDropout),
            ["target_modules"] = Strings(p.GetValue(loraTargets)), ["lr"] = p.GetValue(loraLr), ["weight_decay"] = p.GetValue(loraWd),
        };
        var ssf = new JsonObject { ["init"] = p.GetValue(ssfInit), ["target_modules"] = Strings(p.GetValue(ssfTargets)) };
        var fact = new JsonObject
        {
            ["r"] = p.GetValue(factRank), ["scale"] = p.GetValue(factScale), ["dropout"] = p.GetValue(factDropout),
            ["target_modules"] = Strings(p.GetValue(factTargets)), ["lr"] = p.GetValue(factLr), ["weight_decay"] = p.GetValue(factWd),
        };
        var snell = new JsonObject
        {
            ["r"] = p.GetValue(snellRank), ["sparsity"] = p.GetValue(snellSparsity), ["target_modules"] = Strings(p.GetValue(snellTargets)),
            ["lr"] = p.GetValue(snellLr), ["weight_decay"] = p.GetValue(snellWd),
        };
        var adapter = new JsonObject
        {
            ["size"] = p.GetValue(adapterSize), ["target_modules"] = Strings(p.GetValue(adapterTargets)),
            ["lr"] = p.GetValue(adapterLr), ["weight_decay"] = p.GetValue(adapterWd),
        };
        var vpt = new JsonObject { ["tokens"] = p.GetValue(vptTokens), ["dropout"] = p.GetValue(vptDropout), ["lr"] = p.GetValue(vptLr), ["weight_decay"] = p.GetValue(vptWd) };
        return new Dictionary<string, JsonObject>
        {
            ["coeff"] = Clean(coeff), ["lora"] = Clean(Lora()), ["dora"] = Clean(Lora()), ["ssf"] = Clean(ssf),
            ["fact"] = Clean(fact), ["snell"] = Clean(snell), ["adapter"] = Clean(adapter), ["vpt"] = Clean(vpt),
        };
    }

    private static JsonArray? Strings(string[]? s) => s is { Length: > 0 } ? new JsonArray(s.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()) : null;

    /// <summary>Drops unset flags so the library's defaults apply.</summary>
    private static JsonObject Clean(JsonObject o)
    {
        foreach (var k in o.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) o.Remove(k);
        return o;
    }
}
