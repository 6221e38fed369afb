using System.Text.Json.Nodes;

namespace CoeffTune.Methods;

/// <summary>Reading method options from adapter_config.json, naming the key at fault.</summary>
internal static class ConfigJson
{
    public static double? Double(JsonObject o, string key, string method)
    {
        var n = o[key];
        if (n is null) return null;
        try { return n.GetValue<double>(); }
        catch (Exception) { throw new FormatException($"{method}: '{key}' must be a number, got {n.ToJsonString()}"); }
    }

    public static int? Int(JsonObject o, string key, string method)
    {
        var n = o[key];
        if (n is null) return null;
        try { return n.GetValue<int>(); }
        catch (Exception) { throw new FormatException($"{method}: '{key}' must be an integer, got {n.ToJsonString()}"); }
    }

    public static string[]? Strings(JsonObject o, string key, string method)
    {
        var n = o[key];
        if (n is null) return null;
        if (n is JsonArray a) return a.Select(x => x?.GetValue<string>() ?? throw new FormatException($"{method}: '{key}' has a null entry")).ToArray();
        throw new FormatException($"{method}: '{key}' must be a list of strings, got {n.ToJsonString()}");
    }

    public static JsonArray Array(IEnumerable<string> items) => new(items.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray());
}
