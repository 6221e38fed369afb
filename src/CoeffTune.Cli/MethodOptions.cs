using System.CommandLine;
using System.Text.Json.Nodes;

namespace CoeffTune.Cli;

/// <summary>The recipe flag and each method's own flags, turned into the per-method JSON options the library reads.</summary>
public sealed class MethodOptions
{
    public readonly Option<string> Method = new("--method") { Description = "recipe: methods joined by '+' (coeff, lora, dora, ssf, bitfit, linear, full), e.g. coeff+lora", DefaultValueFactory = _ => "coeff+lora" };
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

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { Method, coeffDropout, coeffParam, coeffLr, coeffWd, loraR, loraAlpha, loraDropout, loraTargets, loraLr, loraWd, ssfInit, ssfTargets })
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
        return new Dictionary<string, JsonObject> { ["coeff"] = Clean(coeff), ["lora"] = Clean(Lora()), ["dora"] = Clean(Lora()), ["ssf"] = Clean(ssf) };
    }

    private static JsonArray? Strings(string[]? s) => s is { Length: > 0 } ? new JsonArray(s.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()) : null;

    /// <summary>Drops unset flags so the library's defaults apply.</summary>
    private static JsonObject Clean(JsonObject o)
    {
        foreach (var k in o.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) o.Remove(k);
        return o;
    }
}
